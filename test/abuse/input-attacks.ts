/**
 * Hostile values on every endpoint (docs/design.md §3.9, points 1, 9): very long and random license keys, hashes,
 * task ids and extensions, in bodies, queries and headers, from addresses other than the honest
 * PC's. Each (endpoint, value) pair is one case: the gateway answers it, below 500, in seconds.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { type Ledger } from './cases.js'
import { httpCall } from './http-raw.js'
import { AUTH, GPU_AUTH } from './relay-procs.js'

const LONG = 'K'.repeat(100_000)
const VALUES: Record<string, () => unknown> = {
  'a 100 kB string': () => LONG,
  'random bytes as latin1': () => randomBytes(2048).toString('latin1'),
  'random unicode': () =>
    Array.from({ length: 500 }, () =>
      String.fromCodePoint(0x4e00 + Math.floor(Math.random() * 20_000)),
    ).join(''),
  'path traversal': () => '../../../../etc/passwd',
  'NUL and newlines': () => 'a\u0000b\r\nX-Injected: 1',
  __proto__: () => '__proto__',
  'a number': () => 1e308,
  'an array of 10,000': () => Array.from({ length: 10_000 }, (_, i) => String(i)),
  'a deep object': () => {
    let value: unknown = 'x'
    for (let i = 0; i < 500; i++) value = { a: value }
    return value
  },
}

interface Endpoint {
  readonly name: string
  readonly call: (value: unknown) => {
    method: string
    path: string
    body?: object
    headers?: Record<string, string>
  }
}

const asQuery = (value: unknown): string =>
  encodeURIComponent(
    typeof value === 'string' ? value.slice(0, 4000) : JSON.stringify(value).slice(0, 4000),
  )

const ENDPOINTS: readonly Endpoint[] = [
  {
    name: 'task/submit license_key',
    call: (v) => ({
      method: 'POST',
      path: '/api/heygem/task/submit',
      body: {
        audio_hash: 'a'.repeat(32),
        audio_ext: '.wav',
        video_hash: 'b'.repeat(32),
        video_ext: '.mp4',
        license_key: v,
      },
    }),
  },
  {
    name: 'task/submit hashes',
    call: (v) => ({
      method: 'POST',
      path: '/api/heygem/task/submit',
      body: {
        audio_hash: v,
        audio_ext: v,
        video_hash: v,
        video_ext: '.mp4',
        license_key: 'ATTACK',
      },
    }),
  },
  {
    name: 'submit (run_server) license_key and hashes',
    call: (v) => ({
      method: 'POST',
      path: '/api/heygem/submit',
      body: { audio_hash: v, video_hash: 'c'.repeat(32), license_key: v },
    }),
  },
  {
    name: 'check_files',
    call: (v) => ({
      method: 'POST',
      path: '/api/heygem/check_files',
      body: { files: [{ hash: v, ext: v }], license_key: v },
    }),
  },
  {
    name: 'progress task_id',
    call: (v) => ({ method: 'GET', path: `/api/heygem/progress?task_id=${asQuery(v)}` }),
  },
  {
    name: 'download task_id',
    call: (v) => ({ method: 'GET', path: `/api/heygem/download?task_id=${asQuery(v)}` }),
  },
  {
    name: 'queue license_key',
    call: (v) => ({ method: 'GET', path: `/api/heygem/queue?license_key=${asQuery(v)}` }),
  },
  {
    name: 'task/status task_id',
    call: (v) => ({ method: 'GET', path: `/api/heygem/task/status?task_id=${asQuery(v)}` }),
  },
  {
    name: 'task/cancel',
    call: (v) => ({
      method: 'POST',
      path: '/api/heygem/task/cancel',
      body: { task_id: v, license_key: v },
    }),
  },
  {
    name: 'task/retry',
    call: (v) => ({ method: 'POST', path: '/api/heygem/task/retry', body: { task_id: v } }),
  },
  {
    name: 'task/history license_key',
    call: (v) => ({
      method: 'GET',
      path: `/api/heygem/task/history?license_key=${asQuery(v)}&limit=${asQuery(v)}`,
    }),
  },
  {
    name: 'asset/list',
    call: (v) => ({
      method: 'GET',
      path: `/api/asset/list?license_key=${asQuery(v)}&type=${asQuery(v)}`,
    }),
  },
  {
    name: 'asset/delete',
    call: (v) => ({
      method: 'POST',
      path: '/api/asset/delete',
      body: { license_key: v, asset_id: v, hash: v },
    }),
  },
  {
    name: 'X-License-Key header',
    call: (v) => ({
      method: 'GET',
      path: '/api/heygem/queue',
      headers: {
        'x-license-key': (typeof v === 'string' ? v : JSON.stringify(v))
          .replace(/[^\x20-\x7e]/g, '?')
          .slice(0, 8000),
      },
    }),
  },
  {
    name: 'relay result (GPU credential) task id and ext',
    call: (v) => ({
      method: 'POST',
      path: `/api/relay/tasks/${asQuery(v).slice(0, 2000)}/result?attempt=${asQuery(v)}&ext=${asQuery(v)}`,
      body: {},
      headers: GPU_AUTH,
    }),
  },
  {
    name: 'relay files (GPU credential) hash',
    call: (v) => ({
      method: 'GET',
      path: `/api/relay/files/${asQuery(v).slice(0, 2000)}`,
      headers: GPU_AUTH,
    }),
  },
]

/** Every endpoint with every hostile value; returns how many cases ran. */
export async function inputAttacks(
  port: number,
  ledger: Ledger,
  address: (i: number) => string,
): Promise<void> {
  let i = 0
  for (const endpoint of ENDPOINTS) {
    await Promise.all(
      Object.entries(VALUES).map(async ([label, make]) => {
        const call = endpoint.call(make())
        const from = address(i++)
        await ledger.run(
          { area: 'inputs', point: 1, name: `${endpoint.name}: ${label}` },
          async () => {
            const reply = await httpCall(port, {
              method: call.method,
              path: call.path,
              ...(call.body ? { body: call.body } : {}),
              headers: { ...AUTH, ...call.headers },
              localAddress: from,
              timeoutMs: 10_000,
            }).catch((err: unknown) => {
              // A request the server refuses to parse at all (a bad URL) may be cut: that is an answer.
              if (String(err).includes('socket hang up') || String(err).includes('ECONNRESET')) {
                return null
              }
              throw err
            })
            if (reply && reply.status >= 500) {
              throw new Error(`HTTP ${String(reply.status)}: ${reply.text.slice(0, 200)}`)
            }
            return reply ? `HTTP ${String(reply.status)}` : 'connection closed'
          },
        )
      }),
    )
  }
  // A path whose %-escape is cut short (decodeURIComponent fails): a 400, like any bad input.
  for (const path of ['/api/relay/files/abc%E4', '/api/relay/tasks/abc%E4%B8/result?attempt=1']) {
    await ledger.run(
      { area: 'inputs', point: 1, name: `a malformed %-escape in the path: ${path}` },
      async () => {
        const reply = await httpCall(port, {
          method: path.includes('result') ? 'POST' : 'GET',
          path,
          headers: GPU_AUTH,
          localAddress: address(i++),
        })
        if (reply.status >= 500) throw new Error(`HTTP ${String(reply.status)}: ${reply.text}`)
      },
    )
  }
  // A task id nobody owns, well formed: the same 404 for every caller.
  await ledger.run({ area: 'inputs', point: 9, name: 'status of a random task id' }, async () => {
    const reply = await httpCall(port, {
      path: `/api/heygem/task/status?task_id=${randomUUID()}`,
      headers: AUTH,
      localAddress: address(i++),
    })
    if (reply.status !== 404) throw new Error(`HTTP ${String(reply.status)}`)
  })
}
