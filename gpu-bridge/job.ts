/**
 * One claimed task through the GPU service: inputs in, submit, follow progress, result out.
 * Every step that the service may be briefly down for is retried until `serviceDownMs`; the
 * service's task id is written to the inbox the moment it is known, so a restarted bridge resumes
 * following the same job instead of starting it again.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { GpuAdapter } from './adapters/types.js'
import { ServiceRejected, ServiceUnreachable } from './adapters/types.js'
import type { GatewayFiles } from './gateway-files.js'
import type { Inbox, InboxRow } from './inbox.js'
import { ProgressThrottle, type ProgressUpdate } from './progress-throttle.js'
import { TEXTS, describeFailure } from './user-text.js'
import { errorMessage } from '../lib/errors.js'
import { HttpError } from '../lib/http-client.js'
import type { FileRef } from '../protocol/index.js'

export interface JobDeps {
  readonly adapter: GpuAdapter
  readonly files: GatewayFiles
  readonly inbox: Inbox
  readonly log: Logger
  readonly now: () => number
  readonly pollMs: number
  readonly progressIntervalMs: number
  readonly serviceDownMs: number
  /** The GPU service was unreachable, or refused our secret: stop claiming until a probe says otherwise. */
  readonly onServiceTrouble?: (state: 'down' | 'unauthorized') => void
  readonly progress: (update: ProgressUpdate) => void
}

export type JobOutcome =
  | { readonly kind: 'done'; readonly result: FileRef; readonly elapsedMs: number }
  | { readonly kind: 'error'; readonly message: string; readonly retryable: boolean }

export async function runJob(
  row: InboxRow,
  deps: JobDeps,
  signal: AbortSignal,
): Promise<JobOutcome> {
  const { adapter, inbox, log } = deps
  // Durations here are monotonic: a wall-clock step neither holds progress back nor ends a retry.
  const started = monotonic()
  const jobLog = log.child({ taskId: row.taskId, attempt: row.attempt })
  const throttle = new ProgressThrottle(deps.progressIntervalMs, deps.progress, monotonic)
  try {
    let serviceTaskId = row.serviceTaskId
    if (serviceTaskId === null && row.submitStarted) {
      // We crashed between sending the submit and storing its answer: the service may be running
      // it. Never send it twice in one attempt; a new attempt is the gateway's decision.
      return { kind: 'error', message: TEXTS.submitUnknown, retryable: true }
    }
    let cached = false
    if (serviceTaskId === null) {
      deps.progress({ progress: 0, stage: 'preparing', message: '正在把文件传到 GPU 服务器' })
      const sent = await untilServiceUp({ deps, signal }, () =>
        adapter.prepare(row.message, deps.files, signal),
      )
      jobLog.info({ sent: sent.length }, 'inputs ready on GPU service')
      inbox.markSubmitStarted(row.taskId, row.attempt)
      const submitted = await untilServiceUp({ deps, signal }, () =>
        adapter.submit(row.message, signal),
      )
      serviceTaskId = submitted.serviceTaskId
      cached = submitted.cached
      inbox.setServiceTaskId(row.taskId, row.attempt, serviceTaskId)
      jobLog.info({ serviceTaskId, cached }, 'submitted to GPU service')
    } else {
      jobLog.info({ serviceTaskId }, 'resuming a job the GPU service already has')
    }

    const id = serviceTaskId
    // A cache hit is done at once: its result is ready to download.
    while (!cached) {
      const status = await untilServiceUp({ deps, signal }, () => adapter.poll(id, signal))
      if (status.kind === 'done') break
      if (status.kind === 'lost') return { kind: 'error', message: TEXTS.lost, retryable: true }
      if (status.kind === 'failed') {
        return { kind: 'error', message: status.message, retryable: status.retryable }
      }
      throttle.push({
        progress: status.progress,
        stage: status.stage,
        message: status.message,
        ...(status.currentFrame === undefined ? {} : { currentFrame: status.currentFrame }),
        ...(status.totalFrames === undefined ? {} : { totalFrames: status.totalFrames }),
      })
      await sleep(deps.pollMs, undefined, { signal })
    }
    throttle.flush()
    const handed = await handOver({ row, serviceTaskId: id }, deps, signal)
    if (handed.kind === 'refused') return handed.outcome
    return { kind: 'done', result: handed.result, elapsedMs: Math.round(monotonic() - started) }
  } catch (err) {
    if (signal.aborted) throw err
    jobLog.warn({ err }, 'job failed')
    if (err instanceof HttpError && err.status === 401) deps.onServiceTrouble?.('unauthorized')
    return { kind: 'error', message: describeFailure(err), retryable: isRetryable(err) }
  } finally {
    throttle.cancel()
  }
}

type HandOver =
  | { readonly kind: 'stored'; readonly result: FileRef }
  | { readonly kind: 'refused'; readonly outcome: JobOutcome }

/** The longest wait between two hand-over tries (shorter with a short poll interval). */
const HAND_OVER_MAX_WAIT_MS = 30_000

/**
 * Stream the result from the GPU service to the gateway (docs/design.md §6). The work is done, so
 * a failed hand-over never becomes a new GPU run: a gateway that is away, fails (5xx, a full disk's
 * 507), refuses our login for a moment or stores other bytes than we sent is tried again, with
 * backoff and jitter, until it accepts; only a task that is no longer this attempt's (404, 409)
 * or a result over the gateway's size limit (413) ends it. Reading the result from the service
 * gives up after `serviceDownMs`.
 */
async function handOver(
  job: { readonly row: InboxRow; readonly serviceTaskId: string },
  deps: JobDeps,
  signal: AbortSignal,
): Promise<HandOver> {
  const { row, serviceTaskId } = job
  const base = Math.max(1, Math.min(deps.pollMs * 2, 1_000))
  const cap = Math.min(HAND_OVER_MAX_WAIT_MS, Math.max(base, deps.pollMs * 20))
  for (let tries = 1; ; tries++) {
    const result = await untilServiceUp({ deps, signal }, () =>
      deps.adapter.openResult(serviceTaskId, signal),
    )
    try {
      return {
        kind: 'stored',
        result: await deps.files.storeResult(row.taskId, row.attempt, result),
      }
    } catch (err) {
      result.stream.destroy()
      signal.throwIfAborted()
      const status = err instanceof HttpError ? err.status : null
      if (status === 404 || status === 409) {
        deps.log.info(
          { taskId: row.taskId, attempt: row.attempt, status },
          'result refused: the task is no longer this attempt',
        )
        return {
          kind: 'refused',
          outcome: { kind: 'error', message: TEXTS.generic, retryable: true },
        }
      }
      if (status === 413) {
        deps.log.warn(
          { taskId: row.taskId, err: errorMessage(err) },
          'result over the gateway limit',
        )
        return {
          kind: 'refused',
          outcome: { kind: 'error', message: RESULT_TOO_LARGE_TEXT, retryable: false },
        }
      }
      if (status !== null && status >= 400 && status < 500 && ![401, 408, 429].includes(status)) {
        throw err // a request the gateway will never take (a bug): no point in sending it again
      }
      const waitMs = backoff(base, cap, tries)
      deps.log.warn(
        { taskId: row.taskId, attempt: row.attempt, status, tries, waitMs, err: errorMessage(err) },
        'result hand-over failed; result kept, trying again',
      )
      await sleep(waitMs, undefined, { signal })
    }
  }
}

/** What the owner reads when the video is larger than the gateway takes. */
const RESULT_TOO_LARGE_TEXT = '生成的视频超过网关允许的大小，无法传回'

/** Exponential backoff from `base` to `cap`, with jitter (half to all of it). */
function backoff(base: number, cap: number, tries: number): number {
  const ceiling = Math.min(cap, base * 2 ** Math.min(tries - 1, 20))
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
}

/** Monotonic ms: durations that no wall-clock step moves. */
function monotonic(): number {
  return performance.now()
}

/** Bad input (4xx other than not-found, timeout, conflict, too many) is not worth another try. */
function isRetryable(err: unknown): boolean {
  if (err instanceof ServiceRejected) return false
  if (err instanceof HttpError && err.status >= 400 && err.status < 500) {
    return [401, 404, 408, 409, 429].includes(err.status)
  }
  return true
}

function isGatewayAway(err: unknown): boolean {
  return err instanceof HttpError && (err.status === 0 || (err.status >= 502 && err.status <= 504))
}

/**
 * Run `step`, retrying while the GPU service or the gateway cannot be reached, for at most
 * `limitMs` (default `serviceDownMs`).
 */
async function untilServiceUp<T>(
  ctx: { readonly deps: JobDeps; readonly signal: AbortSignal },
  step: () => Promise<T>,
  limitMs = ctx.deps.serviceDownMs,
): Promise<T> {
  const { deps, signal } = ctx
  let downSince: number | null = null
  for (;;) {
    signal.throwIfAborted()
    try {
      return await step()
    } catch (err) {
      if (!isUnreachable(err)) throw err
      if (err instanceof ServiceUnreachable) deps.onServiceTrouble?.('down')
      const now = monotonic()
      downSince ??= now
      if (now - downSince >= limitMs) throw err
      deps.log.warn({ err: errorMessage(err) }, 'GPU service or gateway unreachable; retrying')
      await sleep(Math.min(deps.pollMs * 2, 2_000), undefined, { signal })
    }
  }
}

function isUnreachable(err: unknown): boolean {
  return err instanceof ServiceUnreachable || isGatewayAway(err)
}
