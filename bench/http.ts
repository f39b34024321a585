/**
 * The gateway's HTTP API beside its peers (issue 11 goals 1, 2, 7, 8), every figure measured in
 * the same run, rounds interleaved:
 * - submit req/s (10 keep-alive connections) vs a bare express 5 route with one better-sqlite3
 *   insert (`synchronous=FULL`); the same at N queued vs at 0 (flat);
 * - status req/s with 4k queued vs the bare route's select by id; status and history (50 rows)
 *   p50 with N queued beside the same N rows all done;
 * - the gateway's RSS with N tasks (its own process);
 * - a large upload through upload_file vs `cp` + `md5sum` of the same file.
 * Gateways run in child processes (bench/http-gateway-child.ts), each on its own data folder made
 * from one template task the real API made, copied to N rows (bench/http-preload.ts).
 */
import { execFile } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Bench, Goal } from './goal.js'
import { startChild, type Child } from './http-children.js'
import { Loader, type Req, type Target } from './http-load.js'
import { markAllDone, preloadTasks } from './http-preload.js'
import { fmt, median } from './stats.js'
import { md5Buffer } from '../lib/hash.js'
import { uploadMultipart } from '../lib/http-client.js'
import { HEYGEM_PATHS, TASK_PATHS } from '../protocol/index.js'
import { mediaBytes } from '../test/helpers/media.js'

const run = promisify(execFile)
const SECRET = 'bench-pc-secret'
const AUTH = { authorization: `Bearer ${SECRET}` }
const OWNER = 'bench'
const CONNECTIONS = 10
const MB = 1024 * 1024

interface Inputs {
  readonly audio: string
  readonly video: string
}

function startGatewayChild(dataDir: string): Promise<Child> {
  return startChild('bench/http-gateway-child.ts', {
    BENCH_DATA_DIR: dataDir,
    BENCH_API_SECRET: SECRET,
  })
}

/** POST upload_file as the PC app does (multipart, its md5 as `hash`), streamed from `file`. */
async function uploadFile(
  url: string,
  up: { file: string; size: number; hash: string; ext: string },
) {
  const reply = await uploadMultipart({
    url: `${url}${HEYGEM_PATHS.uploadFile}`,
    source: createReadStream(up.file),
    size: up.size,
    fields: { hash: up.hash, ext: up.ext },
    fileField: 'file',
    filename: `input${up.ext}`,
    headers: AUTH,
  })
  const body = reply.body as { code?: unknown; data?: { hash?: unknown } } | null
  if (reply.status !== 200 || body?.code !== 0) {
    throw new Error(`upload failed: ${String(reply.status)} ${JSON.stringify(reply.body)}`)
  }
  return String(body.data?.hash)
}

/** Write `bytes` into `dir` and upload them: the hash the gateway answers. */
async function uploadBytes(
  url: string,
  up: { readonly dir: string; readonly bytes: Buffer; readonly ext: string },
): Promise<string> {
  const hash = md5Buffer(up.bytes)
  const file = join(up.dir, `upload-${hash}${up.ext}`)
  await writeFile(file, up.bytes)
  return uploadFile(url, { file, size: up.bytes.length, hash, ext: up.ext })
}

function submitReq(inputs: Inputs): Req {
  return {
    method: 'POST',
    path: TASK_PATHS.submit,
    body: {
      audio_hash: inputs.audio,
      audio_ext: '.wav',
      video_hash: inputs.video,
      video_ext: '.mp4',
      license_key: OWNER,
    },
  }
}

function pick(ids: readonly string[]): string {
  return ids[Math.floor(Math.random() * ids.length)] ?? ''
}

function ratioGoal(
  g: { name: string; unit: string; target: number; peerName: string },
  figure: number,
  peer: number,
): Goal {
  const ratio = figure / peer
  return {
    name: g.name,
    figure: `${fmt(figure)} ${g.unit} (${fmt(ratio)}x)`,
    peer: `${g.peerName}: ${fmt(peer)} ${g.unit}`,
    target: `>= ${String(g.target)}x peer`,
    ok: ratio >= g.target,
  }
}

/** `fn` for each of `names` per round, the order rotated each round: the values per name. */
async function interleave(
  names: readonly string[],
  rounds: number,
  fn: (name: string) => Promise<number>,
): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(names.map((n) => [n, []]))
  for (let r = 0; r < rounds; r += 1) {
    for (let i = 0; i < names.length; i += 1) {
      const name = names[(i + r) % names.length] ?? ''
      out.get(name)?.push(await fn(name))
    }
  }
  return out
}

function med(values: Map<string, number[]>, name: string): number {
  return median(values.get(name) ?? [])
}

export const bench: Bench = async ({ quick, log }) => {
  const n = quick ? 10_000 : 100_000
  const rounds = quick ? 2 : 5
  const roundMs = quick ? 2_000 : 5_000
  const samples = 200
  const historySamples = quick ? 40 : 50
  const uploadSize = (quick ? 50 : 200) * MB
  const uploadReps = quick ? 2 : 3
  const dir = await mkdtemp(join(tmpdir(), 'bench-http-'))
  const children: Child[] = []
  const loader = new Loader()
  const start = async (dataDir: string): Promise<Child> => {
    const child = await startGatewayChild(dataDir)
    children.push(child)
    return child
  }
  try {
    // One template task made by the real API, then folders copied from it and preloaded.
    const tpl = join(dir, 'template')
    const first = await start(tpl)
    const inputs: Inputs = {
      audio: await uploadBytes(first.url, {
        dir,
        bytes: mediaBytes('audio', 'bench-a', 64 * 1024),
        ext: '.wav',
      }),
      video: await uploadBytes(first.url, {
        dir,
        bytes: mediaBytes('video', 'bench-v', 256 * 1024),
        ext: '.mp4',
      }),
    }
    const reply = (await loader.send({ url: first.url, headers: AUTH }, submitReq(inputs))) as {
      data: { task_id: string }
    }
    const templateId = reply.data.task_id
    await new Promise((resolve) => setTimeout(resolve, 500))
    await first.stop()
    children.length = 0
    const dirs = { zero: join(dir, 'g0'), four: join(dir, 'g4k'), many: join(dir, 'gn') }
    for (const d of Object.values(dirs)) await cp(tpl, d, { recursive: true })
    const t0 = performance.now()
    const fourIds = [templateId, ...preloadTasks(dirs.four, templateId, 4_000)]
    const manyIds = [templateId, ...preloadTasks(dirs.many, templateId, n)]
    const done = join(dir, 'gdone')
    await cp(dirs.many, done, { recursive: true })
    markAllDone(done)
    log(
      `preloaded 4,000 and ${fmt(n)} rows (copies of one API-made task) in ${fmt(performance.now() - t0)} ms`,
    )

    const zero = await start(dirs.zero)
    const four = await start(dirs.four)
    const many = await start(dirs.many)
    const allDone = await start(done)
    const peer = await startChild('bench/http-peer-child.ts', {
      BENCH_PEER_DB: join(dir, 'peer.sqlite'),
    })
    children.push(peer)
    const gw = (c: Child): Target => ({ url: c.url, headers: AUTH })
    const peerT: Target = { url: peer.url, headers: {} }
    const conns = { connections: CONNECTIONS, ms: roundMs }

    // Goal 1: submit rate, and flat from 0 to N queued.
    // "At 0 queued": each round on a fresh gateway copied from the template (1 task), so the
    // queue a round leaves behind does not count against the next one.
    let round = 0
    const freshRate = async (): Promise<number> => {
      round += 1
      const fresh = join(dir, `g0-${String(round)}`)
      await cp(tpl, fresh, { recursive: true })
      const child = await startGatewayChild(fresh)
      try {
        // A short warm-up (JIT, connections) so a new process is not measured cold.
        await loader.rate(gw(child), () => submitReq(inputs), { connections: CONNECTIONS, ms: 300 })
        return await loader.rate(gw(child), () => submitReq(inputs), conns)
      } finally {
        await child.stop()
        await rm(fresh, { recursive: true, force: true })
      }
    }
    const submits = await interleave(['relay-0', 'relay-n', 'peer'], rounds, async (name) => {
      const rate =
        name === 'peer'
          ? await loader.rate(peerT, () => ({ ...submitReq(inputs), path: '/submit' }), conns)
          : name === 'relay-0'
            ? await freshRate()
            : await loader.rate(gw(many), () => submitReq(inputs), conns)
      log(`submit ${name}: ${fmt(rate)} req/s`)
      return rate
    })

    // Goal 2: status rate with 4k queued vs the bare select by id.
    const seeded = (await loader.send(peerT, { method: 'POST', path: '/seed?n=4000' })) as {
      data: { ids: string[] }
    }
    const peerIds = seeded.data.ids
    const statusPath = (id: string): string => `${TASK_PATHS.status}?task_id=${id}`
    const statuses = await interleave(['relay', 'peer'], rounds, async (name) => {
      const rate =
        name === 'peer'
          ? await loader.rate(
              peerT,
              () => ({ method: 'GET', path: `/status?task_id=${pick(peerIds)}` }),
              conns,
            )
          : await loader.rate(
              gw(four),
              () => ({ method: 'GET', path: statusPath(pick(fourIds)) }),
              conns,
            )
      log(`status ${name} (4k queued): ${fmt(rate)} req/s`)
      return rate
    })

    // Goal 2: status and history p50 with N queued vs the same rows all done.
    const historyReq: Req = {
      method: 'GET',
      path: `${TASK_PATHS.history}?license_key=${OWNER}&limit=50`,
    }
    const check = (await loader.send(gw(many), historyReq)) as { data: { tasks: unknown[] } }
    log(`history returns ${String(check.data.tasks.length)} rows`)
    const p50s = await interleave(
      ['status-n', 'status-done', 'history-n', 'history-done'],
      rounds,
      async (name) => {
        const child = name.endsWith('-n') ? many : allDone
        const times = name.startsWith('status')
          ? await loader.latencies(
              gw(child),
              () => ({ method: 'GET', path: statusPath(pick(manyIds)) }),
              samples,
            )
          : await loader.latencies(gw(child), () => historyReq, historySamples)
        const p50 = median(times)
        log(`${name}: p50 ${fmt(p50)} ms`)
        return p50
      },
    )

    // Goal 7: the RSS of the gateway that holds N tasks, after the load above.
    const rss = (await many.rss()) / MB
    log(`RSS with ${fmt(n)} tasks: ${fmt(rss)} MB; 0 queued: ${fmt((await zero.rss()) / MB)} MB`)

    // Goal 8: upload_file vs cp + md5sum of the same file (a new file each repetition).
    const uploads = await interleave(['relay', 'cp+md5sum'], uploadReps, async (name) => {
      const bytes = mediaBytes('video', `bench-up-${name}-${String(Math.random())}`, uploadSize)
      const hash = md5Buffer(bytes)
      const file = join(dir, `big-${hash}.mp4`)
      await writeFile(file, bytes)
      const t = performance.now()
      if (name === 'relay') {
        await uploadFile(zero.url, { file, size: bytes.length, hash, ext: '.mp4' })
      } else {
        const copy = join(dir, `copy-${hash}.mp4`)
        await run('sh', ['-c', 'cp "$0" "$1" && md5sum "$1" > /dev/null', file, copy])
        await rm(copy)
      }
      const s = (performance.now() - t) / 1000
      await rm(file)
      log(`upload ${name} ${fmt(uploadSize / MB)} MB: ${fmt(s, 3)} s`)
      return s
    })

    const nText = `${fmt(n / 1000)}k`
    const upRatio = med(uploads, 'relay') / med(uploads, 'cp+md5sum')
    return [
      ratioGoal(
        {
          name: 'submit-rate',
          unit: 'req/s',
          target: 0.8,
          peerName: 'bare express 5 + better-sqlite3 insert FULL',
        },
        med(submits, 'relay-0'),
        med(submits, 'peer'),
      ),
      ratioGoal(
        { name: 'submit-flat', unit: 'req/s', target: 0.8, peerName: 'the relay at ~0 queued' },
        med(submits, 'relay-n'),
        med(submits, 'relay-0'),
      ),
      ratioGoal(
        {
          name: 'status-rate',
          unit: 'req/s',
          target: 0.5,
          peerName: 'bare express 5 select by id',
        },
        med(statuses, 'relay'),
        med(statuses, 'peer'),
      ),
      {
        name: 'status-p50',
        figure: `${fmt(med(p50s, 'status-n'), 3)} ms with ${nText} queued`,
        peer: `the same rows all done: ${fmt(med(p50s, 'status-done'), 3)} ms`,
        target: '<= 1 ms',
        ok: med(p50s, 'status-n') <= 1,
      },
      {
        name: 'history-p50',
        figure: `${fmt(med(p50s, 'history-n'), 3)} ms with ${nText} queued (50 rows)`,
        peer: `the same rows all done: ${fmt(med(p50s, 'history-done'), 3)} ms`,
        target: '<= 5 ms',
        ok: med(p50s, 'history-n') <= 5,
      },
      {
        name: 'gateway-rss',
        figure: `${fmt(rss)} MB with ${nText} tasks`,
        peer: '—',
        target: '<= 150 MB',
        ok: rss <= 150,
      },
      {
        name: 'upload',
        figure: `${fmt(med(uploads, 'relay'), 3)} s for ${fmt(uploadSize / MB)} MB (${fmt(upRatio)}x)`,
        peer: `cp + md5sum: ${fmt(med(uploads, 'cp+md5sum'), 3)} s`,
        target: '<= 1.2x peer',
        ok: upRatio <= 1.2,
      },
    ]
  } finally {
    loader.close()
    await Promise.all(children.map((c) => c.stop()))
    await rm(dir, { recursive: true, force: true })
  }
}
