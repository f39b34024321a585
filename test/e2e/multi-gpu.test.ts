/**
 * Three GPUs of different speeds pull from one queue (docs/design.md §3.2, §10): every task runs
 * exactly once, a faster GPU runs more, and no task waits while a GPU that can run it sits idle,
 * also while one GPU goes off and comes back in the middle of the run.
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { FakeRunServer } from '../fakes/run-server.js'
import { gpuPresence } from '../helpers/gateway-view.js'
import { media, submitTask, upload } from '../helpers/pc.js'
import {
  TEST_CREDENTIALS,
  startTestBridge,
  startTestGateway,
  startTestGpu,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

interface GpuSpec {
  readonly id: string
  readonly secret: string
  /** How long the fake run_server takes for one job (it runs one at a time, queues the rest). */
  readonly jobMs: number
  readonly capacity: number
}

const GPUS: readonly GpuSpec[] = [
  { id: 'gpu-1', secret: TEST_CREDENTIALS.gpus['gpu-1'] ?? '', jobMs: 150, capacity: 1 },
  // Capacity 2 against a service that runs one job at a time: one runs, one waits in its queue.
  { id: 'gpu-2', secret: 'test-gpu-2-secret', jobMs: 300, capacity: 2 },
  { id: 'gpu-3', secret: 'test-gpu-3-secret', jobMs: 600, capacity: 1 },
]
/** The GPU that goes off (bridge closed) and on again mid-run. */
const OFF_AND_ON = 'gpu-2'
const BATCH = 40
const BATCHES = 3
const N = BATCH * BATCHES
/** How long a GPU may have a free slot while a task of its type waits before it counts. */
const GRACE_MS = 1_500
/** Submits in flight at once (a PC app and a few H5 users). */
const SUBMIT_CONCURRENCY = 4

/** [from, to) in wall-clock ms (the gateway's event times are wall clock too). */
interface Span {
  readonly from: number
  readonly to: number
}

interface EventRow {
  readonly task_id: string
  readonly kind: string
  readonly at: number
  readonly gpu_id: string | null
}

/** Events after which a task no longer holds a GPU slot (it left `processing`). */
const ENDS_PROCESSING = new Set(['done', 'failed', 'requeued', 'retried', 'cancelled', 'expired'])
/** Events after which a task waits in the queue. */
const STARTS_QUEUED = new Set(['submitted', 'requeued', 'retried'])

describe('many GPUs pulling from one queue', () => {
  it('runs every task once, faster GPUs more, and no task waits behind an idle GPU, with one GPU going off and on', async () => {
    const dir = await tempDir('multi-gpu')
    const gpus: Record<string, string> = {}
    for (const g of GPUS) gpus[g.id] = g.secret
    const gateway = await startTestGateway(dir, {
      credentials: { ...TEST_CREDENTIALS, gpus },
    })
    const fakes = new Map<string, FakeRunServer>()
    for (const g of GPUS) fakes.set(g.id, await startTestGpu(join(dir, g.id), g.jobMs))
    const startBridgeOf = (g: GpuSpec) =>
      startTestBridge(join(dir, g.id), gateway, fakeOf(fakes, g.id), {
        gpuId: g.id,
        secret: g.secret,
        capacity: g.capacity,
      })
    const bridges = new Map(
      await Promise.all(GPUS.map(async (g) => [g.id, await startBridgeOf(g)] as const)),
    )
    await waitFor(
      async () => (await Promise.all(GPUS.map((g) => isReady(gateway.url, g.id)))).every(Boolean),
      {
        what: 'three GPUs online and ready',
      },
    )
    const runStart = Date.now()
    /** When each GPU could take work, as the gateway saw it. */
    const online = new Map<string, Span[]>(GPUS.map((g) => [g.id, []]))
    const onlineSince = new Map<string, number>(GPUS.map((g) => [g.id, runStart]))

    const db = new Database(join(dir, 'gateway', 'gateway.sqlite'), { readonly: true })
    onTestFinished(() => {
      db.close()
    })
    const doneCount = db.prepare<[], { n: number }>(
      `SELECT COUNT(*) AS n FROM tasks WHERE state = 'done'`,
    )
    const done = (): number => doneCount.get()?.n ?? 0

    const video = await upload(gateway.url, media('multi-gpu-avatar', 'video'), '.mp4')
    const audioOf = new Map<string, string>() // audio hash → task id
    const submitBatch = async (batch: number): Promise<void> => {
      const indexes = Array.from({ length: BATCH }, (_, i) => batch * BATCH + i)
      for (let i = 0; i < indexes.length; i += SUBMIT_CONCURRENCY) {
        await Promise.all(
          indexes.slice(i, i + SUBMIT_CONCURRENCY).map(async (n) => {
            const audio = await upload(
              gateway.url,
              media(`multi-gpu-${String(n)}`, 'audio'),
              '.wav',
            )
            const reply = await submitTask(gateway.url, audio, video, 'K')
            audioOf.set(audio, String(reply.data.task_id))
          }),
        )
      }
    }

    await submitBatch(0)
    await waitFor(() => done() >= 10, { what: '10 tasks done', timeoutMs: 30_000 })

    // One GPU goes off in the middle of the run (whatever it is doing) ...
    const offAt = Date.now()
    online.get(OFF_AND_ON)?.push({ from: onlineSince.get(OFF_AND_ON) ?? runStart, to: offAt })
    await bridges.get(OFF_AND_ON)?.close()
    await submitBatch(1)
    const doneWhileOff = done()
    await waitFor(() => done() >= doneWhileOff + 10, {
      what: '10 more done while gpu-2 is off',
      timeoutMs: 30_000,
    })

    // ... and on again: its inbox and broker session are where it left them.
    const spec = GPUS.find((g) => g.id === OFF_AND_ON)
    if (!spec) throw new Error('no such GPU')
    bridges.set(OFF_AND_ON, await startBridgeOf(spec))
    await waitFor(() => isReady(gateway.url, OFF_AND_ON), { what: `${OFF_AND_ON} back` })
    onlineSince.set(OFF_AND_ON, Date.now())
    await submitBatch(2)

    await waitFor(() => done() >= N, {
      what: `all ${String(N)} tasks done`,
      timeoutMs: 150_000,
    }).catch(
      () => undefined, // counted and asserted below, with the numbers
    )
    const runEnd = Date.now()
    for (const g of GPUS)
      online.get(g.id)?.push({ from: onlineSince.get(g.id) ?? runStart, to: runEnd })

    // Lost: submitted and not done. Run twice: the same task's input submitted to a GPU
    // service more than once (cache hits are answers, not runs).
    const taskIds = [...audioOf.values()]
    const lost = N - done()
    const runs = new Map<string, number>()
    const ranOn = new Map<string, number>()
    for (const g of GPUS) {
      const ran = fakeOf(fakes, g.id).stats.submissions.filter((s) => !s.cached)
      ranOn.set(g.id, ran.length)
      for (const s of ran) runs.set(s.audioHash, (runs.get(s.audioHash) ?? 0) + 1)
    }
    const twice = [...runs.values()].filter((n) => n > 1).length
    const strangers = [...runs.keys()].filter((hash) => !audioOf.has(hash)).length

    const events = db
      .prepare<[], EventRow>('SELECT task_id, kind, at, gpu_id FROM task_events ORDER BY id')
      .all()
    const timeline = timelineOf(events, runEnd)
    const waits = waitsBehindIdleGpu({ timeline, online })
    const mostHeld = new Map(GPUS.map((g) => [g.id, mostAtOnce(timeline.slots.get(g.id) ?? [])]))
    // The measure stands on the event stream: every task's submit and claim must be in it.
    const claimed = new Set(events.filter((e) => e.kind === 'claimed').map((e) => e.task_id))
    const submitted = new Set(events.filter((e) => e.kind === 'submitted').map((e) => e.task_id))

    console.log(
      `multi-gpu: ${String(taskIds.length)} tasks on ${String(GPUS.length)} GPUs, ${String(lost)} lost, ${String(twice)} run twice, ${String(waits.length)} waits behind an idle GPU`,
    )
    if (waits.length > 0) console.log('first waits behind an idle GPU:', waits.slice(0, 5))
    console.log('tasks run per GPU:', Object.fromEntries(ranOn))
    console.log('most tasks processing at once per GPU:', Object.fromEntries(mostHeld))

    expect(taskIds).toHaveLength(N)
    expect(lost).toBe(0)
    expect(twice).toBe(0)
    expect(strangers).toBe(0)
    expect([...ranOn.values()].reduce((a, b) => a + b, 0)).toBe(N)
    expect(ranOn.get('gpu-1') ?? 0).toBeGreaterThan(ranOn.get('gpu-3') ?? 0)
    expect(taskIds.filter((id) => !submitted.has(id) || !claimed.has(id))).toEqual([])
    expect(waits).toEqual([])
    // The GPU that was off ran work before and after.
    expect(ranOn.get(OFF_AND_ON) ?? 0).toBeGreaterThan(0)
    // Capacity above 1 is used, and no GPU ever holds more than it declared.
    expect(mostHeld.get('gpu-2')).toBe(2)
    for (const g of GPUS) expect(mostHeld.get(g.id) ?? 0).toBeLessThanOrEqual(g.capacity)
  }, 240_000)
})

function fakeOf(fakes: ReadonlyMap<string, FakeRunServer>, id: string): FakeRunServer {
  const fake = fakes.get(id)
  if (!fake) throw new Error(`no fake for ${id}`)
  return fake
}

async function isReady(gatewayUrl: string, gpuId: string): Promise<boolean> {
  const p = await gpuPresence(gatewayUrl, gpuId)
  return p.online && p.ready
}

interface IdleWait {
  readonly taskId: string
  readonly gpuId: string
  /** The longest stretch this task stayed queued while that GPU had a free slot, in ms. */
  readonly idleMs: number
}

interface Timeline {
  /** Each stretch a task waited in the queue. */
  readonly queued: readonly { readonly taskId: string; readonly span: Span }[]
  /** Per GPU, each stretch one of its slots was taken by a task in `processing`. */
  readonly slots: ReadonlyMap<string, readonly Span[]>
}

/** The queue and the GPU slots over the run, from the gateway's task events (see below). */
function timelineOf(events: readonly EventRow[], runEnd: number): Timeline {
  const queued: { taskId: string; span: Span }[] = []
  const slots = new Map<string, Span[]>()
  const queuedSince = new Map<string, number>()
  const holder = new Map<string, { gpuId: string; from: number }>()
  const take = (gpuId: string, span: Span): void => {
    slots.set(gpuId, [...(slots.get(gpuId) ?? []), span])
  }
  for (const e of events) {
    if (STARTS_QUEUED.has(e.kind)) queuedSince.set(e.task_id, e.at)
    if (e.kind === 'claimed') {
      const since = queuedSince.get(e.task_id)
      if (since !== undefined) queued.push({ taskId: e.task_id, span: { from: since, to: e.at } })
      queuedSince.delete(e.task_id)
      if (e.gpu_id !== null) holder.set(e.task_id, { gpuId: e.gpu_id, from: e.at })
    }
    const held = holder.get(e.task_id)
    if (held && ENDS_PROCESSING.has(e.kind)) {
      take(held.gpuId, { from: held.from, to: e.at })
      holder.delete(e.task_id)
    }
  }
  for (const [taskId, since] of queuedSince)
    queued.push({ taskId, span: { from: since, to: runEnd } })
  for (const [, held] of holder) take(held.gpuId, { from: held.from, to: runEnd })
  return { queued, slots }
}

/** The most of `spans` that overlap at any instant (one ending as another starts: not both). */
function mostAtOnce(spans: readonly Span[]): number {
  const edges = spans.flatMap((s) => [
    { at: s.from, delta: 1 },
    { at: s.to, delta: -1 },
  ])
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta)
  let now = 0
  let most = 0
  for (const edge of edges) {
    now += edge.delta
    most = Math.max(most, now)
  }
  return most
}

/**
 * "A wait behind an idle GPU": a task that stayed queued for more than GRACE_MS in one stretch
 * while one GPU that runs its type (all three here) was online and ready and had a free slot,
 * i.e. held fewer tasks in `processing` than its capacity, as the gateway's own event stream
 * records it:
 * - a task is queued from its `submitted` (or `requeued`/`retried`) event to its next `claimed`
 *   (or to the end of the run, if it never was);
 * - a GPU's slot is taken from a `claimed` event naming it until that task's next event that ends
 *   `processing` (done, failed, requeued, retried, cancelled, expired);
 * - a GPU is online from the moment the test saw the gateway report it online and ready to the
 *   moment the test started closing its bridge (and again from when it was seen back).
 * The grace absorbs what is not idleness: the claim's round trip after a slot frees, and a GPU
 * just back online sending its birth and first claims. A task queued for 2 s while the fast GPU
 * had nothing to do counts, whatever the other GPUs did meanwhile.
 */
function waitsBehindIdleGpu(input: {
  readonly timeline: Timeline
  readonly online: ReadonlyMap<string, readonly Span[]>
}): IdleWait[] {
  const { queued, slots } = input.timeline
  const waits: IdleWait[] = []
  const free = new Map<string, Span[]>()
  for (const g of GPUS) {
    free.set(g.id, freeSpans(input.online.get(g.id) ?? [], slots.get(g.id) ?? [], g.capacity))
  }
  for (const { taskId, span } of queued) {
    for (const g of GPUS) {
      const idleMs = Math.max(0, ...(free.get(g.id) ?? []).map((f) => overlap(f, span)))
      if (idleMs > GRACE_MS) {
        waits.push({ taskId, gpuId: g.id, idleMs })
        break
      }
    }
  }
  return waits
}

/** The spans within `online` where fewer than `capacity` of `held` overlap. */
function freeSpans(online: readonly Span[], held: readonly Span[], capacity: number): Span[] {
  const out: Span[] = []
  for (const window of online) {
    const edges: { at: number; delta: number }[] = []
    for (const h of held) {
      const from = Math.max(h.from, window.from)
      const to = Math.min(h.to, window.to)
      if (from < to) edges.push({ at: from, delta: 1 }, { at: to, delta: -1 })
    }
    // At one instant, a slot freed before the next is taken (a done and the next claim).
    edges.sort((a, b) => a.at - b.at || a.delta - b.delta)
    let busy = 0
    let freeFrom: number | null = window.from
    for (const edge of edges) {
      busy += edge.delta
      if (busy >= capacity && freeFrom !== null) {
        if (edge.at > freeFrom) out.push({ from: freeFrom, to: edge.at })
        freeFrom = null
      } else if (busy < capacity && freeFrom === null) {
        freeFrom = edge.at
      }
    }
    if (freeFrom !== null && window.to > freeFrom) out.push({ from: freeFrom, to: window.to })
  }
  return out
}

function overlap(a: Span, b: Span): number {
  return Math.max(0, Math.min(a.to, b.to) - Math.max(a.from, b.from))
}
