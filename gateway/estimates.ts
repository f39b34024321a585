/**
 * Time estimates and the words users read about them (DESIGN §9). Until enough history exists,
 * the boot time is the configured one; run time is the mean of recent successful runs, else the
 * configured one.
 */
import { humanDuration } from '../lib/words.js'

export { humanDuration }

export interface EstimateInput {
  /** 1-based place among queued tasks. */
  readonly position: number
  readonly processing: number
  readonly gpusOnline: number
  /** Sum of the online GPUs' capacities. */
  readonly onlineCapacity: number
  readonly bootS: number
  readonly runS: number
}

/** Seconds until this task is expected to start. */
export function etaSeconds(input: EstimateInput): number {
  const ahead = Math.max(0, input.position - 1)
  if (input.gpusOnline === 0) {
    return Math.round(input.bootS + ahead * input.runS)
  }
  const capacity = Math.max(1, input.onlineCapacity)
  const slotsBusy = input.processing + ahead
  return Math.round(Math.floor(slotsBusy / capacity) * input.runS)
}

/** What a user is told while a task waits. */
export function queuedMessage(position: number, eta: number, gpusOnline: number): string {
  const ahead = position > 1 ? `（前面还有 ${position - 1} 个任务）` : ''
  if (gpusOnline === 0) {
    return `⏳ GPU 服务器未上线，任务已排队${ahead}，预计${humanDuration(eta)}后开始；服务器上线后将自动处理，无需重新提交`
  }
  if (eta <= 0) return `任务已提交，即将开始处理`
  return `任务已提交，排队中${ahead}，预计${humanDuration(eta)}后开始`
}
