/**
 * A full disk (docs/design.md §3.9, point 3): the gateway's data folder is a small tmpfs, filled below
 * DISK_MIN_FREE_BYTES, then to the last byte, then emptied. New uploads and submits are refused
 * with 507 DISK_FULL at once, reads keep working, a bridge reconnecting with a Last Will and a
 * restart of the gateway crash nothing, a result hand-over is retried until it is taken (never run
 * again), and everything resumes by itself when space returns.
 */
import { open, rm, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { mp4Bytes, wavBytes } from '../helpers/media.js'
import { expectThat, type Ledger } from './cases.js'
import { dataOf, httpCall, type Reply } from './http-raw.js'
import type { HonestPc } from './honest-pc.js'
import { AUTH, DISK_MIN_FREE_BYTES, type AbuseRelay } from './relay-procs.js'

const DISK_FULL_MSG = '服务器磁盘空间不足，暂时无法接收文件或任务，请稍后再试'
const MB = 1024 * 1024

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/** Grow the filler until `leave` bytes are free (0: until the disk refuses another byte). */
async function fill(dir: string, filler: string, leave: number): Promise<void> {
  const handle = await open(filler, 'a')
  try {
    for (;;) {
      const free = await freeBytes(dir)
      const want = free - leave
      if (want <= 0) return
      try {
        await handle.write(Buffer.alloc(Math.min(want, MB)))
      } catch {
        return // ENOSPC: full
      }
    }
  } finally {
    await handle.close().catch(() => undefined)
  }
}

interface FormParts {
  readonly fields: Record<string, string>
  readonly fileField: string
  readonly name: string
  readonly more?: Record<string, { readonly bytes: Buffer; readonly name: string }>
}

function multipart(bytes: Buffer, form: FormParts): { body: Buffer; type: string } {
  const { fields, fileField, name, more = {} } = form
  const boundary = `disk${String(Date.now())}`
  const parts: Buffer[] = []
  for (const [k, v] of Object.entries(fields)) {
    parts.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`),
    )
  }
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${fileField}"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
  )
  parts.push(bytes, Buffer.from('\r\n'))
  for (const [field, file] of Object.entries(more)) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      file.bytes,
      Buffer.from('\r\n'),
    )
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`))
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` }
}

function expectDiskFull(r: Reply, what: string): void {
  expectThat(r.status === 507, `${what}: HTTP ${String(r.status)} ${r.text.slice(0, 200)}`)
  expectThat(dataOf(r).error === 'DISK_FULL', `${what}: code ${String(dataOf(r).error)}`)
  expectThat(r.json?.msg === DISK_FULL_MSG, `${what}: msg ${String(r.json?.msg)}`)
  expectThat(r.ms < 5_000, `${what}: answered after ${r.ms.toFixed(0)} ms`)
}

export interface DiskContext {
  readonly relay: AbuseRelay
  readonly ledger: Ledger
  readonly pc: HonestPc
  readonly address: (block: number, i: number) => string
  /** Count of the bridge's "connected" log lines so far. */
  readonly bridgeConnections: () => number
}

export async function diskAttacks(ctx: DiskContext): Promise<void> {
  const { relay, ledger, pc } = ctx
  const port = relay.http
  const dir = relay.gatewayDir
  const filler = join(dir, 'abuse-filler')
  const done = pc.accepted[0]
  const submitBody = (tag: string): object => ({
    audio_hash: done?.audio ?? 'a'.repeat(32),
    audio_ext: '.wav',
    video_hash: pc.video,
    video_ext: '.mp4',
    license_key: `DISK-${tag}`,
  })
  const upload = (
    path: string,
    fileField: string,
    form: { fields: Record<string, string>; size: number },
  ): Promise<Reply> => {
    const { fields, size } = form
    const parts = multipart(
      fileField === 'video'
        ? mp4Bytes(`disk-${String(Date.now())}`, size)
        : wavBytes(`disk-${String(Date.now())}`, size),
      { fields, fileField, name: fileField === 'video' ? 'x.mp4' : 'x.wav' },
    )
    return httpCall(port, {
      path,
      body: parts.body,
      headers: { ...AUTH, 'content-type': parts.type },
    })
  }
  const submit = (tag: string): Promise<Reply> =>
    httpCall(port, { path: '/api/heygem/task/submit', body: submitBody(tag), headers: AUTH })

  try {
    // Below DISK_MIN_FREE_BYTES: refused before a byte is written; reads go on.
    await fill(dir, filler, Math.floor(DISK_MIN_FREE_BYTES / 2))
    await delay(1_500)
    await ledger.run(
      { area: 'disk', point: 3, name: 'low space: task/submit answered 507 DISK_FULL' },
      async () => expectDiskFull(await submit('low'), 'task/submit'),
    )
    await ledger.run(
      { area: 'disk', point: 3, name: 'low space: submit (run_server) answered 507 DISK_FULL' },
      async () =>
        expectDiskFull(
          await httpCall(port, {
            path: '/api/heygem/submit',
            body: submitBody('low2'),
            headers: AUTH,
          }),
          'submit',
        ),
    )
    await ledger.run(
      { area: 'disk', point: 3, name: 'low space: upload_file answered 507 DISK_FULL promptly' },
      async () =>
        expectDiskFull(
          await upload('/api/heygem/upload_file', 'file', {
            fields: { hash: 'x', ext: '.wav' },
            size: 512 * 1024,
          }),
          'upload_file',
        ),
    )
    await ledger.run(
      { area: 'disk', point: 3, name: 'low space: the legacy upload answered 507 DISK_FULL' },
      async () => {
        const form = multipart(wavBytes('legacy', 64 * 1024), {
          fields: { license_key: 'DISK' },
          fileField: 'audio',
          name: 'a.wav',
          more: { video: { bytes: mp4Bytes('legacy-video', 64 * 1024), name: 'v.mp4' } },
        })
        expectDiskFull(
          await httpCall(port, {
            path: '/api/heygem/upload',
            body: form.body,
            headers: { ...AUTH, 'content-type': form.type },
          }),
          'upload',
        )
      },
    )
    await ledger.run(
      { area: 'disk', point: 3, name: 'low space: asset upload answered 507 DISK_FULL' },
      async () =>
        expectDiskFull(
          await upload('/api/asset/upload', 'file', {
            fields: { license_key: 'DISK', asset_type: 'voice', name: 'v' },
            size: 64 * 1024,
          }),
          'asset upload',
        ),
    )
    const reads: [string, string][] = [
      ['status', `/api/heygem/task/status?task_id=${done?.id ?? ''}`],
      ['progress', `/api/heygem/progress?task_id=${done?.id ?? ''}`],
      ['history', '/api/heygem/task/history?license_key=HONEST-PC'],
      ['queue', '/api/heygem/queue'],
      ['download', `/api/heygem/download?task_id=${done?.id ?? ''}`],
      ['health', '/api/heygem/health'],
    ]
    for (const [name, path] of reads) {
      await ledger.run(
        { area: 'disk', point: 3, name: `low space: ${name} keeps working` },
        async () => {
          const r = await httpCall(port, { path, headers: AUTH })
          expectThat(r.status === 200, `HTTP ${String(r.status)} ${r.text.slice(0, 120)}`)
        },
      )
    }

    // Full to the last byte.
    await fill(dir, filler, 0)
    await ledger.run(
      {
        area: 'disk',
        point: 3,
        name: 'disk full: a bridge reconnecting with a Last Will crashes nothing',
      },
      async () => {
        await relay.bridge.kill9()
        await relay.startBridge().catch(() => undefined)
        await delay(3_000)
        expectThat(relay.gateway.running, 'the gateway died')
        const r = await httpCall(port, { path: '/api/heygem/queue', headers: AUTH })
        expectThat(r.status === 200, `queue: HTTP ${String(r.status)}`)
      },
    )
    await ledger.run(
      { area: 'disk', point: 3, name: 'disk full: a submit is answered 507, not 500' },
      async () => expectDiskFull(await submit('full'), 'task/submit'),
    )
    await ledger.run(
      {
        area: 'disk',
        point: 3,
        name: 'disk full: a 1 MB upload is answered promptly and leaves no staged bytes',
      },
      async () => {
        expectDiskFull(
          await upload('/api/heygem/upload_file', 'file', {
            fields: { hash: 'y', ext: '.mp4' },
            size: MB,
          }),
          'upload_file',
        )
        const { readdir } = await import('node:fs/promises')
        const staged = await readdir(join(dir, 'files', 'tmp')).catch(() => [])
        expectThat(staged.length === 0, `${String(staged.length)} staged files left`)
      },
    )
    await ledger.run(
      { area: 'disk', point: 3, name: 'disk full: the gateway restarts and answers' },
      () =>
        pc.excuse(async () => {
          await relay.gateway.stop()
          await relay.startGateway()
          const r = await httpCall(port, { path: '/api/heygem/queue', headers: AUTH })
          expectThat(r.status === 200, `queue: HTTP ${String(r.status)}`)
        }),
    )
  } finally {
    await rm(filler, { force: true })
    if (!relay.gateway.running) await pc.excuse(() => relay.startGateway())
  }

  const connectionsBefore = ctx.bridgeConnections()
  await ledger.run(
    { area: 'disk', point: 3, name: 'space back: submits are accepted again without a restart' },
    async () => {
      const deadline = Date.now() + 10_000
      for (;;) {
        const r = await submit('back')
        if (r.status === 200) return
        if (Date.now() > deadline)
          throw new Error(`still HTTP ${String(r.status)} ${r.text.slice(0, 120)}`)
        await delay(500)
      }
    },
  )
  await ledger.run(
    { area: 'disk', point: 3, name: 'space back: the bridge is connected and tasks run again' },
    async () => {
      if (!relay.bridge.running) await relay.startBridge()
      const deadline = Date.now() + 20_000
      const doneBefore = pc.accepted.length - pc.unfinished()
      while (pc.accepted.length - pc.unfinished() <= doneBefore) {
        if (Date.now() > deadline)
          throw new Error(
            `no honest task finished within 20 s (bridge connections ${String(ctx.bridgeConnections() - connectionsBefore)})`,
          )
        await delay(200)
      }
    },
  )
}
