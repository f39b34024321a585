/**
 * One claimed task through the GPU service: inputs in, submit, follow progress, result out.
 * Every step that the service may be briefly down for is retried until `serviceDownMs`; the
 * service's task id is written to the inbox the moment it is known, so a restarted bridge resumes
 * following the same job instead of starting it again.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { GpuAdapter } from './adapters/types.js'
import { ServiceRejected, ServiceUnreachable, SubmitUncertain } from './adapters/types.js'
import type { GatewayFiles } from './gateway-files.js'
import type { Inbox, InboxRow } from './inbox.js'
import { ProgressThrottle, type ProgressUpdate } from './progress-throttle.js'
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
  const started = deps.now()
  const jobLog = log.child({ taskId: row.taskId, attempt: row.attempt })
  const throttle = new ProgressThrottle(deps.progressIntervalMs, deps.progress, deps.now)
  try {
    let serviceTaskId = row.serviceTaskId
    if (serviceTaskId === null && row.submitStarted) {
      // We crashed between sending the submit and storing its answer: the service may be running
      // it. Never send it twice in one attempt; a new attempt is the gateway's decision.
      return { kind: 'error', message: SUBMIT_UNKNOWN, retryable: true }
    }
    if (serviceTaskId === null) {
      deps.progress({ progress: 0, stage: 'preparing', message: '正在把文件传到 GPU 服务器' })
      const sent = await untilServiceUp(deps, signal, () =>
        adapter.prepare(row.message, deps.files, signal),
      )
      jobLog.info({ sent: sent.length }, 'inputs ready on GPU service')
      inbox.markSubmitStarted(row.taskId, row.attempt)
      serviceTaskId = await untilServiceUp(deps, signal, () => adapter.submit(row.message, signal))
      inbox.setServiceTaskId(row.taskId, row.attempt, serviceTaskId)
      jobLog.info({ serviceTaskId }, 'submitted to GPU service')
    } else {
      jobLog.info({ serviceTaskId }, 'resuming a job the GPU service already has')
    }

    const id = serviceTaskId
    for (;;) {
      const status = await untilServiceUp(deps, signal, () => adapter.poll(id, signal))
      if (status.kind === 'done') break
      if (status.kind === 'lost') {
        return {
          kind: 'error',
          message: 'GPU 服务丢失了该任务（可能已重启），将重新执行',
          retryable: true,
        }
      }
      if (status.kind === 'failed') {
        return { kind: 'error', message: status.message, retryable: status.retryable }
      }
      throttle.push({ progress: status.progress, stage: status.stage, message: status.message })
      await sleep(deps.pollMs, undefined, { signal })
    }
    throttle.flush()
    const result = await handOver(row, id, deps, signal)
    return { kind: 'done', result, elapsedMs: deps.now() - started }
  } catch (err) {
    if (signal.aborted) throw err
    jobLog.warn({ err: errorMessage(err) }, 'job failed')
    if (err instanceof SubmitUncertain)
      return { kind: 'error', message: SUBMIT_UNKNOWN, retryable: true }
    return {
      kind: 'error',
      message: `GPU 任务执行失败：${errorMessage(err)}`,
      retryable: isRetryable(err),
    }
  } finally {
    throttle.cancel()
  }
}

const SUBMIT_UNKNOWN = '无法确认 GPU 服务是否收到了任务（提交时连接中断），将作为新的一次尝试执行'

/**
 * Stream the result from the GPU service to the gateway. Reading it from the service gives up
 * after `serviceDownMs`; handing it to the gateway is retried for as long as the gateway is away,
 * because the work is done.
 */
async function handOver(
  row: InboxRow,
  serviceTaskId: string,
  deps: JobDeps,
  signal: AbortSignal,
): Promise<FileRef> {
  for (;;) {
    const result = await untilServiceUp(deps, signal, () =>
      deps.adapter.openResult(serviceTaskId, signal),
    )
    try {
      return await deps.files.storeResult(row.taskId, row.attempt, result)
    } catch (err) {
      result.stream.destroy()
      if (!isGatewayAway(err)) throw err
      deps.log.warn({ taskId: row.taskId, err: errorMessage(err) }, 'gateway away; result kept')
      await sleep(Math.min(deps.pollMs * 5, 5_000), undefined, { signal })
    }
  }
}

/** Bad input (4xx other than not-found, timeout, conflict, too many) is not worth another try. */
function isRetryable(err: unknown): boolean {
  if (err instanceof ServiceRejected) return false
  if (err instanceof HttpError && err.status >= 400 && err.status < 500) {
    return [404, 408, 409, 429].includes(err.status)
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
  deps: JobDeps,
  signal: AbortSignal,
  step: () => Promise<T>,
  limitMs = deps.serviceDownMs,
): Promise<T> {
  let downSince: number | null = null
  for (;;) {
    signal.throwIfAborted()
    try {
      return await step()
    } catch (err) {
      if (!isUnreachable(err)) throw err
      const now = deps.now()
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
