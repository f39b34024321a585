/**
 * The chaos run (issue: nothing lost, nothing run twice): a gateway and a bridge in real child
 * processes, the fake GPU service, and a TCP proxy on the bridge's MQTT link. Tasks are submitted
 * (retrying with an Idempotency-Key while the gateway is down) while faults are injected at
 * random: bridge SIGKILL, gateway SIGKILL and restart, the link cut, the GPU service restarted,
 * and from the gateway's surroundings (helpers/chaos-faults.ts): its data disk filled and emptied,
 * its wall clock stepped, an MQTT reader that stops reading. Then it settles and counts: lost (not
 * done, or a wrong result), duplicate runs (a job the GPU service completed twice for the same
 * task), stuck (not terminal), crashes (a process that exited without being killed).
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { md5Buffer } from '../../lib/hash.js'
import { requestJson, uploadMultipart } from '../../lib/http-client.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { startFakeRunServer } from '../fakes/run-server.js'
import { TERMINAL_STATES } from '../../protocol/index.js'
import {
  SURROUNDING_FAULTS,
  shuffled,
  surroundingFaults,
  type SurroundingFault,
  type SurroundingStats,
} from '../helpers/chaos-faults.js'
import { mp4Bytes, wavBytes } from '../helpers/media.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { Proc, freePort } from './processes.js'

export interface ChaosOptions {
  readonly dir: string
  readonly tasks: number
  /** Mean time between faults. */
  readonly faultEveryMs: number
  /** How long the fake GPU takes per job. */
  readonly jobMs: number
  readonly seed: number
  readonly settleTimeoutMs: number
  readonly say?: (line: string) => void
  /** The fault kinds to inject (default: all of them). */
  readonly faults?: readonly FaultKind[]
}

const PROCESS_FAULTS = ['kill-bridge', 'kill-gateway', 'cut-link', 'restart-gpu'] as const
export const FAULT_KINDS: readonly FaultKind[] = [...PROCESS_FAULTS, ...SURROUNDING_FAULTS]
export type FaultKind = (typeof PROCESS_FAULTS)[number] | SurroundingFault

/** `CHAOS_FAULTS=kill-bridge,fill-disk,…` (or unset: all), checked against the known kinds. */
export function faultKindsOf(text: string | undefined): readonly FaultKind[] {
  if (text === undefined || text.trim() === '') return FAULT_KINDS
  const kinds = text.split(',').map((k) => k.trim())
  const unknown = kinds.filter((k) => !FAULT_KINDS.some((known) => known === k))
  if (unknown.length > 0) {
    throw new Error(
      `unknown chaos fault(s): ${unknown.join(', ')}; known: ${FAULT_KINDS.join(', ')}`,
    )
  }
  return FAULT_KINDS.filter((k) => kinds.includes(k))
}

export interface ChaosReport {
  readonly tasks: number
  readonly faults: Readonly<Record<FaultKind, number>>
  readonly faultsTotal: number
  readonly lost: number
  readonly duplicateRuns: number
  readonly stuck: number
  /** Gateway or bridge exits nobody caused (each was started again so the run could go on). */
  readonly crashes: number
  /** Fault kinds that could not run here, with the reason. */
  readonly skipped: readonly string[]
  /** The kinds injected (those asked for, less the skipped ones). */
  readonly kinds: readonly FaultKind[]
  readonly surroundings: SurroundingStats
  /** Jobs the GPU service forgot when it restarted, before their results were fetched. */
  readonly rerunsForgotten: number
  /** Jobs sent by a bridge that died before reading the answer (nobody ever asked about them). */
  readonly rerunsOrphaned: number
  readonly line: string
  /** For each task that was lost, stuck or run twice: what happened to it, from the gateway's log. */
  readonly details: readonly string[]
}

const RESULT_SIZE = 4096
const GPU_SECRET = 'chaos-gpu-1-secret'
const API_SECRET = 'chaos-api-secret'
const GATEWAY_MQTT_SECRET = 'chaos-gateway-mqtt-secret'
const ADMIN_SECRET = 'chaos-admin-secret'
const AUTH = { authorization: `Bearer ${API_SECRET}` }
const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_STATES)

/** mulberry32: a small seeded PRNG, so a failing run can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A 4xx answer: the request itself is wrong, retrying cannot help. */
class Refused extends Error {}

/** Retry an HTTP step while the gateway is away (no answer, or 5xx). */
async function persist<T>(
  step: () => Promise<{ status: number; body: unknown }>,
  read: (body: unknown) => T,
  what: string,
): Promise<T> {
  const deadline = Date.now() + 120_000
  for (;;) {
    try {
      const reply = await step()
      if (reply.status >= 400 && reply.status < 500) {
        throw new Refused(`${what}: HTTP ${String(reply.status)} ${JSON.stringify(reply.body)}`)
      }
      if (reply.status < 400) return read(reply.body)
    } catch (err) {
      if (err instanceof Refused) throw err
    }
    if (Date.now() > deadline) throw new Error(`${what}: gave up`)
    await delay(100)
  }
}

function dataOf(body: unknown): Record<string, unknown> {
  if (typeof body === 'object' && body !== null && 'data' in body) {
    const data = body.data
    if (typeof data === 'object' && data !== null) return data as Record<string, unknown>
  }
  throw new Error(`no data in ${JSON.stringify(body)}`)
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const say = options.say ?? (() => undefined)
  const random = prng(options.seed)
  const ports = { http: await freePort(), mqtt: await freePort() }
  const base = `http://127.0.0.1:${String(ports.http)}`
  const wanted = options.faults ?? FAULT_KINDS
  const surroundings = await surroundingFaults({
    wanted: SURROUNDING_FAULTS.filter((k) => wanted.includes(k)),
    dir: options.dir,
    gatewayDataDir: join(options.dir, 'gateway'),
    gatewaySecret: GATEWAY_MQTT_SECRET,
    adminSecret: ADMIN_SECRET,
  })
  for (const line of surroundings.skipped) say(line)
  const gateway = new Proc(
    'gateway/main.ts',
    {
      DATA_DIR: join(options.dir, 'gateway'),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(ports.http),
      BROKER_HOST: '127.0.0.1',
      BROKER_PORT: String(ports.mqtt),
      BROKER_WS_PORT: 'off',
      MAX_ATTEMPTS: '100',
      GPU_SECRETS: `gpu-1:${GPU_SECRET}`,
      API_SECRET: API_SECRET,
      // One PC submitting hundreds of tasks in a minute: not what the limits are for here.
      RATE_LIMIT_SUBMITS_PER_MIN: '100000',
      RATE_LIMIT_UPLOADS_PER_MIN: '100000',
      ...surroundings.env,
    },
    'gateway listening',
  )
  const gpu = await startFakeRunServer({
    dir: join(options.dir, 'gpu'),
    durationMs: options.jobMs,
    resultSize: RESULT_SIZE,
  })
  const proxy = await startTcpProxy(ports.mqtt)
  const bridge = new Proc(
    'gpu-bridge/main.ts',
    {
      BRIDGE_GPU_ID: 'gpu-1',
      BRIDGE_SECRET: GPU_SECRET,
      MQTT_URL: proxy.url('mqtt'),
      GATEWAY_URL: base,
      GPU_SERVICE_URL: gpu.url,
      BRIDGE_DATA_DIR: join(options.dir, 'bridge'),
      BRIDGE_POLL_MS: '50',
      BRIDGE_HEARTBEAT_MS: '1000',
      BRIDGE_PROGRESS_INTERVAL_MS: '200',
      BRIDGE_CLAIM_RETRY_MS: '1000',
      BRIDGE_RESEND_MS: '1000',
      BRIDGE_SERVICE_DOWN_MS: '30000',
      MQTT_KEEPALIVE_S: '3',
    },
    'connected',
  )
  const faults: Record<FaultKind, number> = {
    'kill-bridge': 0,
    'kill-gateway': 0,
    'cut-link': 0,
    'restart-gpu': 0,
    'fill-disk': 0,
    'step-clock': 0,
    'stall-reader': 0,
  }
  const kinds = wanted.filter(
    (k) => !SURROUNDING_FAULTS.some((s) => s === k) || surroundings.kinds.some((s) => s === k),
  )
  /** Each kind once per round, in a random order: every kind runs, however short the run. */
  const deck: FaultKind[] = []
  const notes: string[] = []
  let crashes = 0
  /** A process that exited by itself is a crash: noted, and started again so the run goes on. */
  const revive = async (): Promise<void> => {
    for (const [name, proc] of [
      ['gateway', gateway],
      ['bridge', bridge],
    ] as const) {
      if (proc.running) continue
      crashes++
      notes.push(`${name} exited by itself:\n${proc.output().slice(-3000)}`)
      say(`${name} exited by itself; starting it again`)
      try {
        await proc.start()
      } catch (err) {
        notes.push(
          `${name} did not start again: ${err instanceof Error ? err.message : String(err)}`,
        )
      }
    }
  }
  try {
    await gateway.start()
    await bridge.start()

    const upload = async (bytes: Buffer, ext: string): Promise<string> =>
      persist(
        () =>
          uploadMultipart({
            url: `${base}/api/heygem/upload_file`,
            source: Readable.from([bytes]),
            size: bytes.length,
            fields: { hash: md5Buffer(bytes), ext },
            fileField: 'file',
            filename: `x${ext}`,
            headers: AUTH,
            timeoutMs: 15_000,
          }),
        (body) => String(dataOf(body).hash),
        'upload',
      )
    const video = await upload(mp4Bytes('chaos-avatar', 8192), '.mp4')
    const submitted: { id: string; audio: string }[] = []
    let submitting = true

    const submitter = (async () => {
      for (let i = 0; i < options.tasks; i++) {
        const audio = await upload(
          wavBytes(`chaos-${String(options.seed)}-${String(i)}`, 256),
          '.wav',
        )
        const id = await persist(
          () =>
            requestJson(`${base}/api/heygem/task/submit`, {
              body: {
                audio_hash: audio,
                audio_ext: '.wav',
                video_hash: video,
                video_ext: '.mp4',
                license_key: `PC-${String(i % 3)}`,
              },
              headers: { ...AUTH, 'Idempotency-Key': `chaos-${String(i)}` },
            }),
          (body) => String(dataOf(body).task_id),
          'submit',
        )
        submitted.push({ id, audio })
        if (i % 25 === 0) say(`submitted ${String(i + 1)}/${String(options.tasks)}`)
      }
      submitting = false
    })()

    // Faults go on until every task has been submitted and the queue is empty.
    const drained = async (): Promise<boolean> => {
      if (submitting) return false
      try {
        const reply = await requestJson(`${base}/api/heygem/queue`, {
          timeoutMs: 2_000,
          headers: AUTH,
        })
        const q = dataOf(reply.body)
        return q.queued === 0 && q.processing === 0
      } catch {
        return false
      }
    }
    const hooks = {
      cutBridgeLink: () => proxy.cut(),
      httpUrl: base,
      httpHeaders: AUTH,
      mqttPort: ports.mqtt,
      mqttUrl: `mqtt://127.0.0.1:${String(ports.mqtt)}`,
    }
    const injector = (async () => {
      for (;;) {
        await delay(options.faultEveryMs * (0.5 + random()))
        await revive()
        if (kinds.length === 0 || (await drained())) break
        if (deck.length === 0) deck.push(...shuffled(kinds, random))
        const kind = deck.pop() ?? 'cut-link'
        faults[kind]++
        say(`fault: ${kind}`)
        switch (kind) {
          case 'kill-bridge':
            await bridge.kill9()
            await delay(random() * 1000)
            await bridge.start()
            break
          case 'kill-gateway':
            await gateway.kill9()
            await delay(random() * 1000)
            await gateway.start()
            break
          case 'cut-link':
            proxy.setRefusing(true)
            proxy.cut()
            await delay(random() * 1000)
            proxy.setRefusing(false)
            break
          case 'restart-gpu':
            await gpu.restart()
            break
          case 'fill-disk':
          case 'step-clock':
          case 'stall-reader':
            try {
              await surroundings.inject(kind, random, hooks)
            } catch (err) {
              notes.push(`${kind} failed: ${err instanceof Error ? err.message : String(err)}`)
              say(`fault ${kind} failed: ${err instanceof Error ? err.message : String(err)}`)
            }
            break
        }
        await revive()
      }
    })()
    await Promise.all([submitter, injector])
    say('queue drained; checking every task')

    const statusOf = async (id: string): Promise<string> =>
      persist(
        () => requestJson(`${base}/api/heygem/task/status?task_id=${id}`, { headers: AUTH }),
        (body) => String(dataOf(body).status),
        'status',
      ).catch(() => 'unknown')
    const deadline = Date.now() + options.settleTimeoutMs
    let statuses: string[] = []
    for (;;) {
      statuses = await Promise.all(submitted.map((t) => statusOf(t.id)))
      if (statuses.every((s) => TERMINAL.has(s)) || Date.now() > deadline) break
      await delay(500)
    }

    let lost = 0
    let stuck = 0
    for (const [i, task] of submitted.entries()) {
      const status = statuses[i] ?? 'unknown'
      if (!TERMINAL.has(status) && status !== 'unknown') {
        stuck++
        continue
      }
      if (status !== 'done') {
        lost++
        continue
      }
      const res = await fetch(`${base}/api/heygem/download?task_id=${task.id}`, { headers: AUTH })
      const bytes = Buffer.from(await res.arrayBuffer())
      if (!bytes.equals(fakeResultBytes(task.audio, video, RESULT_SIZE))) lost++
    }
    lost += options.tasks - submitted.length

    await gateway.stop()
    // Runs of one task on the GPU service beyond the first are duplicates, except two kinds the
    // fake service saw the relay could not have avoided: a job the service forgot when it
    // restarted (before its result was fetched), and a job nobody ever asked about, because the
    // bridge that sent it died before it read the answer (the relay then runs a new attempt).
    // A cache hit (the service had rendered these inputs and answers with that result) runs
    // nothing on the GPU, so it is no run at all.
    const runs = gpu.stats.submissions.filter((s) => !s.cached)
    const runsPerAudio = new Map<string, { runs: number; excused: number }>()
    const forgotten = new Set(gpu.stats.forgotten)
    for (const s of runs) {
      const entry = runsPerAudio.get(s.audioHash) ?? { runs: 0, excused: 0 }
      entry.runs++
      if (forgotten.has(s.taskId) || !gpu.stats.asked.has(s.taskId)) entry.excused++
      runsPerAudio.set(s.audioHash, entry)
    }
    let duplicateRuns = 0
    let lostByGpu = 0
    let orphaned = 0
    for (const s of runs) {
      if (forgotten.has(s.taskId)) lostByGpu++
      else if (!gpu.stats.asked.has(s.taskId)) orphaned++
    }
    const suspects: string[] = []
    for (const [i, task] of submitted.entries()) {
      const entry = runsPerAudio.get(task.audio) ?? { runs: 0, excused: 0 }
      const extra = Math.max(0, entry.runs - 1 - entry.excused)
      duplicateRuns += extra
      if (extra > 0 || statuses[i] !== 'done') suspects.push(task.id)
    }

    const faultsTotal = Object.values(faults).reduce((a, b) => a + b, 0)
    const st = surroundings.stats
    const line = `${String(options.tasks)} tasks, ${String(faultsTotal)} faults injected, ${String(lost)} lost, ${String(duplicateRuns)} duplicate runs, ${String(stuck)} stuck, ${String(crashes)} crashes (re-run: ${String(lostByGpu)} forgotten by a GPU restart, ${String(orphaned)} sent by a bridge that died before the answer; disk filled ${String(st.fullFills)}× to the last byte, ${String(st.lowFills)}× below the minimum, uploads meanwhile ${String(st.uploadsRefusedDiskFull)} refused DISK_FULL and ${String(st.uploadsOtherwise.length)} otherwise${st.uploadsOtherwise.length > 0 ? ` [${[...new Set(st.uploadsOtherwise)].join(', ')}]` : ''}, queue ${String(st.queueNotAnswered)} unanswered; clock stepped to ${String(Math.round(st.clockOffsetS / 60))} min at the end, ${String(Math.round(st.maxClockOffsetS / 3600))} h at most; ${String(st.readersCut)}/${String(st.readersStalled)} stalled readers cut by the broker, another client's slowest delivery meanwhile ${String(st.maxProbeMs)} ms)`
    const details = [
      ...notes,
      ...describe(join(options.dir, 'gateway', 'gateway.sqlite'), suspects),
    ]
    return {
      tasks: options.tasks,
      faults,
      faultsTotal,
      lost,
      duplicateRuns,
      stuck,
      crashes,
      skipped: surroundings.skipped,
      kinds,
      surroundings: st,
      rerunsForgotten: lostByGpu,
      rerunsOrphaned: orphaned,
      line,
      details,
    }
  } finally {
    await bridge.stop()
    await gateway.stop()
    await proxy.close()
    await gpu.close()
    await surroundings.close()
  }
}

/** The transitions the gateway recorded for each task id. */
function describe(dbPath: string, ids: readonly string[]): string[] {
  if (ids.length === 0) return []
  const db = new Database(dbPath, { readonly: true })
  try {
    return ids.map((id) => {
      const rows = db
        .prepare<
          [string],
          {
            at: number
            from_state: string | null
            to_state: string
            attempt: number
            note: string | null
          }
        >(
          `SELECT at, from_state, COALESCE(to_state, 'purged') AS to_state, attempt,
             json_extract(data, '$.note') AS note
           FROM task_events WHERE task_id = ? AND from_state IS NOT to_state ORDER BY id`,
        )
        .all(id)
      const steps = rows.map(
        (r) =>
          `${r.from_state ?? '-'}→${r.to_state}#${String(r.attempt)}${r.note ? ` (${r.note})` : ''}`,
      )
      return `${id}: ${steps.join(', ')}`
    })
  } finally {
    db.close()
  }
}
