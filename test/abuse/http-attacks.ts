/**
 * Hostile HTTP connections (docs/design.md §3.9, points 1, 4): many at once from many loopback addresses, each
 * pattern one case: headers and 1 MB of JSON without credentials, half headers, slowloris, more
 * connections from one address than the cap, oversized headers and bodies, uploads cut off, stalled
 * or over the limit (their staged bytes must go), and a slow steady upload that must arrive.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { mp4Bytes } from '../helpers/media.js'
import { expectThat, type Ledger } from './cases.js'
import { httpCall, rawSocket, rawStatus, within, type RawSocket } from './http-raw.js'
import { AUTH, UPLOAD_MAX_BYTES, type AbuseRelay } from './relay-procs.js'

export interface HttpAttackContext {
  readonly relay: AbuseRelay
  readonly ledger: Ledger
  /** Hostile address `i` of address block `block` (never 127.0.0.1). */
  readonly address: (block: number, i: number) => string
  /** Sample the gateway's RSS while `fn` runs: the growth in MB over its value at the start. */
  readonly measureRss: <T>(what: string, fn: () => Promise<T>) => Promise<T>
}

const MB = 1024 * 1024
const JSON_MB = Buffer.from(`{"license_key":"${'A'.repeat(MB - 20)}`)

function head(path: string, headers: Record<string, string>): string {
  const lines = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1']
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`)
  return `${lines.join('\r\n')}\r\n\r\n`
}

/** Open `count` raw sockets from `address(i)`, a few at a time so the accept queue keeps up. */
async function openMany(count: number, open: (i: number) => RawSocket): Promise<RawSocket[]> {
  const sockets: RawSocket[] = []
  for (let i = 0; i < count; i++) {
    sockets.push(open(i))
    if (i % 50 === 49) await delay(20)
  }
  return sockets
}

async function allClosed(sockets: readonly RawSocket[], ms: number): Promise<number> {
  await within(Promise.all(sockets.map((s) => s.closed)), ms)
  return sockets.filter((s) => s.closedByServer()).length
}

async function stagedFiles(relay: AbuseRelay): Promise<number> {
  const entries = await readdir(join(relay.gatewayDir, 'files', 'tmp')).catch(() => [])
  return entries.length
}

async function noStagedBytes(relay: AbuseRelay, what: string): Promise<void> {
  const deadline = Date.now() + 4_000
  while ((await stagedFiles(relay)) > 0) {
    if (Date.now() > deadline) throw new Error(`${what}: staged bytes left in files/tmp`)
    await delay(100)
  }
}

/** A multipart upload head for `size` bytes of file; the caller writes the bytes. */
function uploadHead(size: number, auth: boolean): { head: string; tail: string } {
  const boundary = 'abuseboundary'
  const pre =
    `--${boundary}\r\nContent-Disposition: form-data; name="hash"\r\n\r\nhostile\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="ext"\r\n\r\n.mp4\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.mp4"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n'
  const tail = `\r\n--${boundary}--\r\n`
  const length = Buffer.byteLength(pre) + size + Buffer.byteLength(tail)
  return {
    head:
      head('/api/heygem/upload_file', {
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': String(length),
        ...(auth ? { Authorization: AUTH.authorization, Connection: 'close' } : {}),
      }) + pre,
    tail,
  }
}

export async function httpAttacks(ctx: HttpAttackContext): Promise<void> {
  const { relay, ledger, address } = ctx
  const port = relay.http

  await ledger.run(
    {
      area: 'http',
      point: 1,
      name: '1,000 connections: headers and 1 MB of JSON without credentials, then quiet',
    },
    () =>
      ctx.measureRss('1,000 unauthenticated 1 MB bodies', async () => {
        const sockets = await openMany(1000, (i) =>
          rawSocket(port, address(1, i), (s) => {
            s.write(
              head('/api/heygem/task/submit', {
                'Content-Type': 'application/json',
                'Content-Length': String(2 * MB),
              }),
            )
            s.write(JSON_MB)
          }),
        )
        const closed = await allClosed(sockets, 8_000)
        const answered = sockets.filter((s) => rawStatus(s.received()) === 401).length
        const keptOpen = sockets.filter((s) => !s.closedByServer()).length
        const withClose = sockets.filter((s) => /connection: close/i.test(s.received())).length
        for (const s of sockets) s.destroy()
        expectThat(
          answered === 1000,
          `${String(answered)}/1000 answered 401 without reading the body`,
        )
        expectThat(withClose === 1000, `${String(withClose)}/1000 answers said Connection: close`)
        expectThat(keptOpen === 0 && closed === 1000, `${String(keptOpen)} still open after 8 s`)
        return '1000 × 401 and closed'
      }),
  )

  const halfHeaders = ledger.run(
    {
      area: 'http',
      point: 1,
      name: '600 connections: half the headers, then quiet (closed by the headers deadline)',
    },
    () =>
      ctx.measureRss('600 half headers', async () => {
        const sockets = await openMany(600, (i) =>
          rawSocket(port, address(2, i), (s) =>
            s.write('POST /api/heygem/submit HTTP/1.1\r\nHost: x\r\nX-Half: '),
          ),
        )
        const closed = await allClosed(sockets, 7_000)
        for (const s of sockets) s.destroy()
        expectThat(
          closed === 600,
          `${String(600 - closed)}/600 still open 7 s later (HTTP_HEADERS_TIMEOUT_MS 3 s)`,
        )
      }),
  )

  const slowloris = ledger.run(
    { area: 'http', point: 1, name: '200 slowloris connections: a header byte every 400 ms' },
    async () => {
      const timers: NodeJS.Timeout[] = []
      const sockets = await openMany(200, (i) =>
        rawSocket(port, address(3, i), (s) => {
          s.write('GET /api/heygem/queue HTTP/1.1\r\nHost: x\r\n')
          timers.push(setInterval(() => s.write('X'), 400))
        }),
      )
      const closed = await allClosed(sockets, 7_000)
      for (const t of timers) clearInterval(t)
      for (const s of sockets) s.destroy()
      expectThat(
        closed === 200,
        `${String(200 - closed)}/200 trickling connections still open after 7 s`,
      )
    },
  )

  await Promise.all([halfHeaders, slowloris])

  await ledger.run(
    {
      area: 'http',
      point: 1,
      name: '100 idle connections from one address: over the cap of 64 closed at once',
    },
    async () => {
      const sockets = await openMany(100, () => rawSocket(port, address(4, 0)))
      await delay(1_000)
      const cut = sockets.filter((s) => s.closedByServer()).length
      const honest = await httpCall(port, { path: '/api/heygem/queue', headers: AUTH })
      for (const s of sockets) s.destroy()
      expectThat(honest.status === 200, `an honest request got ${String(honest.status)}`)
      expectThat(
        cut >= 36 && cut <= 40,
        `${String(cut)} of 100 closed within 1 s (expected the 36 over the cap)`,
      )
    },
  )

  const wrongSecret = ledger.run(
    { area: 'http', point: 1, name: '200 connections with 1 MB of JSON and a wrong secret' },
    async () => {
      const sockets = await openMany(200, (i) =>
        rawSocket(port, address(5, i), (s) => {
          s.write(
            head('/api/heygem/submit', {
              'Content-Type': 'application/json',
              'Content-Length': String(2 * MB),
              Authorization: `Bearer wrong-${String(i)}`,
            }),
          )
          s.write(JSON_MB)
        }),
      )
      const closed = await allClosed(sockets, 5_000)
      const refused = sockets.filter((s) => rawStatus(s.received()) === 401).length
      for (const s of sockets) s.destroy()
      expectThat(
        refused === 200 && closed === 200,
        `${String(refused)} answered 401, ${String(closed)} closed`,
      )
    },
  )

  const noCredsUpload = ledger.run(
    {
      area: 'http',
      point: 1,
      name: '200 connections with a 1 MB multipart upload and no credentials',
    },
    async () => {
      const up = uploadHead(2 * MB, false)
      const sockets = await openMany(200, (i) =>
        rawSocket(port, address(6, i), (s) => {
          s.write(up.head)
          s.write(JSON_MB)
        }),
      )
      const closed = await allClosed(sockets, 5_000)
      const refused = sockets.filter((s) => rawStatus(s.received()) === 401).length
      for (const s of sockets) s.destroy()
      expectThat(
        refused === 200 && closed === 200,
        `${String(refused)} answered 401, ${String(closed)} closed`,
      )
      await noStagedBytes(relay, 'unauthenticated uploads')
    },
  )

  const bigHeaders = ledger.run(
    { area: 'http', point: 1, name: '100 requests with 64 kB of headers' },
    async () => {
      const sockets = await openMany(100, (i) =>
        rawSocket(port, address(7, i), (s) =>
          s.write(
            `GET /api/heygem/queue HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(64 * 1024)}\r\n\r\n`,
          ),
        ),
      )
      const closed = await allClosed(sockets, 5_000)
      const statuses = new Set(sockets.map((s) => rawStatus(s.received())))
      for (const s of sockets) s.destroy()
      expectThat(closed === 100, `${String(100 - closed)} still open`)
      expectThat(![...statuses].some((st) => st >= 500), `answered ${[...statuses].join(',')}`)
    },
  )

  await Promise.all([wrongSecret, noCredsUpload, bigHeaders])

  await ledger.run(
    { area: 'http', point: 1, name: 'authenticated JSON body over the limit (1.5 MB)' },
    async () => {
      const reply = await httpCall(port, {
        path: '/api/heygem/task/submit',
        body: { license_key: 'L'.repeat(1.5 * MB) },
        headers: AUTH,
        localAddress: address(8, 0),
      }).catch(() => null)
      if (reply)
        expectThat(reply.status === 413 || reply.status === 400, `HTTP ${String(reply.status)}`)
    },
  )

  await ledger.run(
    {
      area: 'http',
      point: 3,
      name: 'authenticated upload over UPLOAD_MAX_BYTES: 413 and no staged bytes',
    },
    async () => {
      const size = UPLOAD_MAX_BYTES + MB
      const up = uploadHead(size, true)
      const s = rawSocket(port, address(8, 1), (sock) => {
        sock.write(up.head)
        const chunk = Buffer.alloc(MB, 7)
        for (let i = 0; i < size / MB; i++) sock.write(chunk)
        sock.write(up.tail)
      })
      await within(s.closed, 8_000)
      const status = rawStatus(s.received())
      s.destroy()
      expectThat(status === 413, `answered ${String(status)}`)
      await noStagedBytes(relay, 'oversized upload')
    },
  )

  await ledger.run(
    {
      area: 'http',
      point: 3,
      name: 'authenticated upload cut off after 1 MB of the file: no staged bytes',
    },
    async () => {
      const up = uploadHead(3 * MB, true)
      const s = rawSocket(port, address(8, 2), (sock) => {
        sock.write(up.head)
        sock.write(mp4Bytes('cut-off', MB))
      })
      await delay(500)
      s.destroy()
      await noStagedBytes(relay, 'cut-off upload')
    },
  )

  await ledger.run(
    {
      area: 'http',
      point: 4,
      name: 'authenticated upload that stalls mid-file: cut after the idle time, no staged bytes',
    },
    async () => {
      const up = uploadHead(3 * MB, true)
      const s = rawSocket(port, address(8, 3), (sock) => {
        sock.write(up.head)
        sock.write(mp4Bytes('stalled', 256 * 1024))
      })
      const closed = await within(s.closed, 9_000)
      s.destroy()
      expectThat(closed, 'a stalled upload still open 9 s later (HTTP_IDLE_TIMEOUT_MS 5 s)')
      await noStagedBytes(relay, 'stalled upload')
    },
  )

  await ledger.run(
    { area: 'http', point: 4, name: 'a steady slow upload longer than every deadline arrives' },
    async () => {
      const bytes = mp4Bytes(`slow-steady-${String(Date.now())}`, 2 * MB)
      const up = uploadHead(bytes.length, true)
      const s = rawSocket(port, address(8, 4), (sock) => {
        sock.write(up.head)
        let offset = 0
        const timer = setInterval(() => {
          // 256 kB a second for 8 s: longer than the headers (3 s) and idle (5 s) deadlines.
          const next = bytes.subarray(offset, offset + 32 * 1024)
          offset += next.length
          if (next.length > 0) sock.write(next)
          else {
            clearInterval(timer)
            sock.write(up.tail)
          }
        }, 125)
        sock.on('close', () => clearInterval(timer))
      })
      await within(s.closed, 15_000)
      const status = rawStatus(s.received())
      s.destroy()
      expectThat(status === 200, `answered ${String(status)}: ${s.received().slice(0, 300)}`)
    },
  )
}
