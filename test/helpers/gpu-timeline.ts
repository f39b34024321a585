/**
 * The queue and the GPUs over a run, from the gateway's task events (the outbox): how long each
 * task waited, when each GPU's slots were taken, and which waits happened while a GPU sat idle.
 * Used by the multi-GPU end-to-end test.
 */

/** [from, to) in wall-clock ms (the gateway's event times are wall clock too). */
export interface Span {
  readonly from: number
  readonly to: number
}

/** A row of the gateway's `task_events` table, the columns read here. */
export interface EventRow {
  readonly task_id: string
  readonly kind: string
  readonly at: number
  readonly gpu_id: string | null
}

/** Events after which a task no longer holds a GPU slot (it left `processing`). */
const ENDS_PROCESSING = new Set(['done', 'failed', 'requeued', 'retried', 'cancelled', 'expired'])
/** Events after which a task waits in the queue. */
const STARTS_QUEUED = new Set(['submitted', 'requeued', 'retried'])

export interface GpuSlots {
  readonly id: string
  readonly capacity: number
}

export interface IdleWait {
  readonly taskId: string
  readonly gpuId: string
  /** The longest stretch this task stayed queued while that GPU had a free slot, in ms. */
  readonly idleMs: number
}

export interface Timeline {
  /** Each stretch a task waited in the queue. */
  readonly queued: readonly { readonly taskId: string; readonly span: Span }[]
  /** Per GPU, each stretch one of its slots was taken by a task in `processing`. */
  readonly slots: ReadonlyMap<string, readonly Span[]>
}

/** The queue and the GPU slots over the run, from the gateway's task events (see below). */
export function timelineOf(events: readonly EventRow[], runEnd: number): Timeline {
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
export function mostAtOnce(spans: readonly Span[]): number {
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
 * "A wait behind an idle GPU": a task that stayed queued for more than the grace in one stretch
 * while one GPU that runs its type (every GPU in the multi-GPU test) was online and ready and had a free slot,
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
export function waitsBehindIdleGpu(input: {
  readonly timeline: Timeline
  readonly online: ReadonlyMap<string, readonly Span[]>
  readonly gpus: readonly GpuSlots[]
  /** How long a GPU may have a free slot while a task of its type waits before it counts. */
  readonly graceMs: number
}): IdleWait[] {
  const { queued, slots } = input.timeline
  const waits: IdleWait[] = []
  const free = new Map<string, Span[]>()
  for (const g of input.gpus) {
    free.set(g.id, freeSpans(input.online.get(g.id) ?? [], slots.get(g.id) ?? [], g.capacity))
  }
  for (const { taskId, span } of queued) {
    for (const g of input.gpus) {
      const idleMs = Math.max(0, ...(free.get(g.id) ?? []).map((f) => overlap(f, span)))
      if (idleMs > input.graceMs) {
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
