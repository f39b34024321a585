/**
 * How long a task runs, learned from recent successful runs (estimates.ts): per second of input
 * audio where the lengths are known (wav-duration.ts), else the median run; the configured time
 * until there is any history.
 */

/** One finished run: claim to done, and the length of its audio when known. */
export interface RunSample {
  readonly runMs: number
  readonly audioMs: number | null
}

export interface RunModel {
  /** Run ms per ms of audio (median over runs of known length); null: none known. */
  readonly perAudioMs: number | null
  /** Median run ms of the samples; null: no history. */
  readonly medianRunMs: number | null
  /** What a task is taken to run when neither applies (TASK_RUN_ESTIMATE_S). */
  readonly defaultRunMs: number
}

/** The median; null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const upper = sorted[mid] ?? 0
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? upper) + upper) / 2
}

export function runModel(samples: readonly RunSample[], defaultRunMs: number): RunModel {
  const rates = samples.flatMap((s) =>
    s.audioMs !== null && s.audioMs > 0 ? [s.runMs / s.audioMs] : [],
  )
  return {
    perAudioMs: median(rates),
    medianRunMs: median(samples.map((s) => s.runMs)),
    defaultRunMs,
  }
}

/** A task whose audio length is unknown (or no run of known length was seen). */
export function typicalRunMs(model: RunModel): number {
  return model.medianRunMs ?? model.defaultRunMs
}

/** The run ms expected of a task with `audioMs` of audio (null: unknown). */
export function runMsFor(model: RunModel, audioMs: number | null): number {
  if (audioMs !== null && audioMs > 0 && model.perAudioMs !== null) {
    return model.perAudioMs * audioMs
  }
  return typicalRunMs(model)
}

/** What the tasks ahead of one add up to: those of known length by it, the rest as typical. */
export function workAheadMs(
  model: RunModel,
  ahead: { readonly count: number; readonly knownCount: number; readonly knownAudioMs: number },
): number {
  if (model.perAudioMs === null) return ahead.count * typicalRunMs(model)
  const unknown = Math.max(0, ahead.count - ahead.knownCount)
  return ahead.knownAudioMs * model.perAudioMs + unknown * typicalRunMs(model)
}

/**
 * What is left of a running task: its estimate less the time it has run; once past it, what its
 * progress says is left at the pace so far (0 without progress: it may end any moment).
 */
export function remainingRunMs(o: {
  readonly estimateMs: number
  readonly elapsedMs: number
  readonly progress: number
}): number {
  const left = o.estimateMs - Math.max(0, o.elapsedMs)
  if (left > 0) return left
  if (o.progress <= 0 || o.progress >= 100) return 0
  return (o.elapsedMs * (100 - o.progress)) / o.progress
}
