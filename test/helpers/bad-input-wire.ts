/**
 * Bad input on the wire (test/e2e/bad-input.test.ts): multipart bodies no library sends (no
 * boundary, cut off, thousands of parts, a huge field), malformed HTTP (repeated or conflicting
 * headers, a NUL, huge headers), and the WebSocket progress route with bad tokens, ids,
 * handshakes and frames. None may change the state; each gets its clear answer (the envelope where
 * the gateway answers, Node's bare 4xx where its HTTP parser refuses, a close code on a socket).
 */
import type { CaseContext } from './bad-input-cases.js'
import { snapshot, stagedFiles, type Tally } from './bad-input.js'
import { media } from './pc.js'
import { multipartBody, rawRequest, type RawReply } from './raw-http.js'
import { clientFrame, rawWs } from './raw-ws.js'
import { waitFor } from './wait-for.js'

type Check = () => Promise<string | null>

function envelope(reply: RawReply | null, status: number, code: string): string | null {
  const body = reply?.json as { code?: unknown; msg?: unknown; data?: { error?: unknown } } | null
  if (
    reply?.status === status &&
    body?.code === status &&
    body.data?.error === code &&
    typeof body.msg === 'string'
  ) {
    return null
  }
  return reply ? `${String(reply.status)} ${reply.body.slice(0, 200)}` : 'no answer'
}

function bare(reply: RawReply | null, status: number): string | null {
  return reply?.status === status ? null : reply ? String(reply.status) : 'no answer'
}

export async function runWireCases(opts: {
  readonly port: number
  readonly dataDir: string
  readonly ctx: CaseContext
  readonly tally: Tally
}): Promise<void> {
  const { port, ctx } = opts
  const auth = `Authorization: Bearer ${ctx.apiSecret}`
  const post = (path: string, body: { type: string; length: number; extra?: string }) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Type: ${body.type}\r\nContent-Length: ${String(body.length)}${body.extra ?? ''}`
  const upload = (type: string, body: Buffer, cutAfter?: number) =>
    rawRequest({
      port,
      head: post('/api/heygem/upload_file', { type, length: body.length }),
      body,
      ...(cutAfter === undefined ? {} : { cutAfter }),
    })
  const mp = (boundary: string) => `multipart/form-data; boundary=${boundary}`
  const wav = media('wire', 'audio', 8192)
  const form = multipartBody({
    boundary: 'b1',
    fields: [
      ['hash', 'tmp_1'],
      ['ext', '.wav'],
    ],
    files: [['file', 'a.wav', wav]],
  })
  const ws = (id: string, token: string) => `/ws/progress/${id}?token=${encodeURIComponent(token)}`
  const firstCode = async (path: string): Promise<unknown> => {
    const sock = await rawWs(port, path)
    try {
      const isText = (f: { opcode: number }) => f.opcode === 0x1
      await waitFor(() => sock.closed() || sock.frames().some(isText), { what: 'a first frame' })
      const text = sock.frames().find((f) => f.opcode === 0x1)
      return text ? (JSON.parse(text.payload.toString()) as { code?: unknown }).code : undefined
    } finally {
      sock.destroy()
    }
  }
  /** Open a good progress socket, send `frame`, expect the server to close with `code`. */
  const badFrame = async (frame: Buffer, code: number): Promise<string | null> => {
    const sock = await rawWs(port, ws(ctx.taskId, ctx.apiSecret))
    try {
      if (sock.status !== 101) return `handshake ${String(sock.status)}`
      sock.write(frame)
      const got = await sock.closeCode().catch(() => 'still open')
      return got === code ? null : `closed with ${String(got)}, not ${String(code)}`
    } finally {
      sock.destroy()
    }
  }
  const text = (s: string) => Buffer.from(s)

  const cases: [string, Check][] = [
    [
      'multipart without a boundary',
      async () => envelope(await upload('multipart/form-data', form), 400, 'BAD_UPLOAD'),
    ],
    [
      'multipart with another boundary than the body',
      async () => envelope(await upload(mp('zz'), form), 400, 'BAD_UPLOAD'),
    ],
    [
      'multipart without its closing boundary',
      async () =>
        envelope(
          await upload(
            mp('b1'),
            multipartBody({
              boundary: 'b1',
              fields: [['hash', 'x']],
              files: [['file', 'a.wav', wav]],
              open: true,
            }),
          ),
          400,
          'BAD_UPLOAD',
        ),
    ],
    [
      'multipart of garbage',
      async () => envelope(await upload(mp('b1'), Buffer.alloc(3000, 0xff)), 400, 'BAD_UPLOAD'),
    ],
    [
      'multipart cut off mid-file (client gone)',
      async () => {
        await upload(mp('b1'), form, 2_000)
        // No answer is due; what was staged is removed (then the state is as it was).
        const gone = await waitFor(async () => (await stagedFiles(opts.dataDir)) === 0, {
          what: 'the staged part removed',
          timeoutMs: 5_000,
        }).catch(() => false)
        return gone ? null : 'its staged part stayed'
      },
    ],
    [
      'multipart: 3,000 fields before hash (over the field limit)',
      async () => {
        const junk = Array.from({ length: 3_000 }, (_, i) => [`f${String(i)}`, 'v'] as const)
        const body = multipartBody({
          boundary: 'b2',
          fields: [...junk, ['hash', 'tmp_9'], ['ext', '.wav']],
          files: [['file', 'a.wav', media('wire-many', 'audio')]],
        })
        return envelope(await upload(mp('b2'), body), 400, 'VALIDATION_FAILED')
      },
    ],
    [
      'multipart: a hash field of 300 KB',
      async () => {
        const body = multipartBody({
          boundary: 'b3',
          fields: [
            ['hash', 'h'.repeat(300_000)],
            ['ext', '.wav'],
          ],
          files: [['file', 'a.wav', media('wire-huge', 'audio')]],
        })
        return envelope(await upload(mp('b3'), body), 400, 'VALIDATION_FAILED')
      },
    ],
    [
      'multipart: 2,000 file parts named file',
      async () => {
        const files = Array.from(
          { length: 2_000 },
          () => ['file', 'a.mp4', Buffer.from('x')] as const,
        )
        const body = multipartBody({
          boundary: 'b4',
          fields: [
            ['hash', 'tmp_8'],
            ['ext', '.mp4'],
          ],
          files,
        })
        return envelope(await upload(mp('b4'), body), 400, 'NOT_MEDIA')
      },
    ],
    [
      'two different Content-Lengths',
      async () =>
        bare(
          await rawRequest({
            port,
            head: post('/api/heygem/check_files', {
              type: 'application/json',
              length: 2,
              extra: '\r\nContent-Length: 5',
            }),
            body: '{}',
          }),
          400,
        ),
    ],
    [
      'Content-Length with Transfer-Encoding: chunked',
      async () =>
        bare(
          await rawRequest({
            port,
            head: post('/api/heygem/check_files', {
              type: 'application/json',
              length: 2,
              extra: '\r\nTransfer-Encoding: chunked',
            }),
            body: '2\r\n{}\r\n0\r\n\r\n',
          }),
          400,
        ),
    ],
    [
      'a bad chunk size',
      async () =>
        bare(
          await rawRequest({
            port,
            head: `POST /api/heygem/check_files HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked`,
            body: 'zz\r\n{}\r\n0\r\n\r\n',
          }),
          400,
        ),
    ],
    [
      'a NUL in a header',
      async () =>
        bare(
          await rawRequest({
            port,
            head: `GET /api/heygem/queue HTTP/1.1\r\nHost: x\r\nX-License-Key: a\u0000b\r\n${auth}`,
          }),
          400,
        ),
    ],
    [
      'a 20 KB header',
      async () =>
        bare(
          await rawRequest({
            port,
            head: `GET /api/heygem/queue HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(20_000)}\r\n${auth}`,
          }),
          431,
        ),
    ],
    [
      'two Authorization headers, the first wrong',
      async () =>
        envelope(
          await rawRequest({
            port,
            head: `GET /api/heygem/queue HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-wrong\r\n${auth}`,
          }),
          401,
          'UNAUTHORIZED',
        ),
    ],
    [
      'a raw NUL in the path',
      async () =>
        bare(
          await rawRequest({
            port,
            head: `GET /api/heygem/queue\u0000x HTTP/1.1\r\nHost: x\r\n${auth}`,
          }),
          400,
        ),
    ],
    [
      'WS: a wrong token',
      async () => ((await firstCode(ws(ctx.taskId, 'wrong'))) === 401 ? null : 'no 401'),
    ],
    [
      'WS: no token',
      async () => ((await firstCode(`/ws/progress/${ctx.taskId}`)) === 401 ? null : 'no 401'),
    ],
    [
      'WS: a 10 KB token',
      async () => ((await firstCode(ws(ctx.taskId, 't'.repeat(10_000)))) === 401 ? null : 'no 401'),
    ],
    [
      'WS: an unknown task',
      async () => ((await firstCode(ws(ctx.unknown, ctx.apiSecret))) === 404 ? null : 'no 404'),
    ],
    [
      'WS: a Chinese task id',
      async () =>
        (await firstCode(ws(encodeURIComponent('任务'), ctx.apiSecret))) === 404 ? null : 'no 404',
    ],
    [
      'WS: a task id of 4,000 characters',
      async () =>
        (await firstCode(ws('7'.repeat(4_000), ctx.apiSecret))) === 404 ? null : 'no 404',
    ],
    [
      'WS: a NUL in the task id',
      async () =>
        (await firstCode(ws(`${ctx.taskId}%00`, ctx.apiSecret))) === 404 ? null : 'no 404',
    ],
    [
      'WS: a broken escape in the id',
      async () => ((await firstCode(ws('%E4%BB', ctx.apiSecret))) === 404 ? null : 'no 404'),
    ],
    [
      "WS: the done task's progress (accepted)",
      async () => ((await firstCode(ws(ctx.doneTaskId, ctx.apiSecret))) === 0 ? null : 'no code 0'),
    ],
    [
      'WS: a path under the id',
      async () =>
        (await rawWs(port, `/ws/progress/${ctx.taskId}/x`)).status === 404 ? null : 'no 404',
    ],
    [
      'WS: another path',
      async () => ((await rawWs(port, '/ws/other')).status === 404 ? null : 'no 404'),
    ],
    [
      'WS: version 99',
      async () =>
        (await rawWs(port, ws(ctx.taskId, ctx.apiSecret), { 'Sec-WebSocket-Version': '99' }))
          .status === 400
          ? null
          : 'no 400',
    ],
    [
      'WS: no key',
      async () =>
        (await rawWs(port, ws(ctx.taskId, ctx.apiSecret), { 'Sec-WebSocket-Key': null })).status ===
        400
          ? null
          : 'no 400',
    ],
    [
      'WS frame: a 4 KB text (over the inbound limit)',
      () => badFrame(clientFrame({ opcode: 0x1, payload: Buffer.alloc(4096, 0x61) }), 1009),
    ],
    [
      'WS frame: text that is not UTF-8',
      () => badFrame(clientFrame({ opcode: 0x1, payload: Buffer.from([0xc3, 0x28, 0xff]) }), 1007),
    ],
    [
      'WS frame: unmasked',
      () => badFrame(clientFrame({ opcode: 0x1, payload: text('hi'), unmasked: true }), 1002),
    ],
    [
      'WS frame: RSV1 without an extension',
      () => badFrame(clientFrame({ opcode: 0x1, payload: text('hi'), rsv: 4 }), 1002),
    ],
    [
      'WS frame: a reserved opcode',
      () => badFrame(clientFrame({ opcode: 0x3, payload: text('hi') }), 1002),
    ],
    [
      'WS frame: a ping of 200 bytes',
      () => badFrame(clientFrame({ opcode: 0x9, payload: Buffer.alloc(200) }), 1002),
    ],
    [
      'WS frame: a fragmented ping',
      () => badFrame(clientFrame({ opcode: 0x9, payload: text('p'), fin: false }), 1002),
    ],
    [
      'WS frame: a continuation with no start',
      () => badFrame(clientFrame({ opcode: 0x0, payload: text('x') }), 1002),
    ],
    [
      'WS frame: a length of 2^63 announced',
      () =>
        badFrame(clientFrame({ opcode: 0x2, payload: Buffer.alloc(0), announce: 2n ** 63n }), 1009),
    ],
    [
      'WS frame: a close with code 999',
      () => badFrame(clientFrame({ opcode: 0x8, payload: Buffer.from([0x03, 0xe7]) }), 1002),
    ],
  ]
  let before = await snapshot(opts.dataDir)
  for (const [name, check] of cases) {
    let problem: string | null
    try {
      problem = await check()
    } catch (err) {
      problem = `failed: ${err instanceof Error ? err.message : String(err)}`
    }
    opts.tally.tried++
    if (problem !== null) opts.tally.wrong.push(`${name}: ${problem}`)
    const after = await snapshot(opts.dataDir)
    if (after !== before) opts.tally.changed.push(name)
    before = after
  }
  // After all of it, a good socket is still pushed its progress at once.
  if ((await firstCode(ws(ctx.taskId, ctx.apiSecret))) !== 0) {
    opts.tally.wrong.push('WS: a good socket after the bad ones got no progress')
  }
}
