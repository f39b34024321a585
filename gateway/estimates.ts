/**
 * Time estimates and the words users read about them (docs/design.md §9). Until enough history
 * exists, the boot time is the configured one; run time is the mean of recent successful runs,
 * else the configured one. While no GPU is ready the boot estimate counts down from when the wait
 * began, so the words a user reads move with time.
 */
import { humanDuration } from '../lib/words.js'

export { humanDuration }

export interface EstimateInput {
  /** 1-based place among queued tasks. */
  readonly position: number
  readonly processing: number
  /** GPUs online and ready (their service can take work). */
  readonly gpusOnline: number
  /** Sum of the ready GPUs' capacities. */
  readonly onlineCapacity: number
  /** Seconds until a GPU is expected to be ready, when none is. */
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

/** The shortest boot estimate shown once the expected boot time has passed. */
export const MIN_BOOT_REMAINING_S = 30

/** What is left of the boot estimate `elapsedS` seconds into the wait, never below the floor. */
export function bootRemainingS(bootS: number, elapsedS: number): number {
  return Math.max(MIN_BOOT_REMAINING_S, Math.round(bootS - Math.max(0, elapsedS)))
}

/**
 * Why a queued task waits: no GPU online (`offline`), a GPU online whose service is still loading
 * (`starting`), or other tasks ahead on a ready GPU (`queued`).
 */
export type WaitReason = 'offline' | 'starting' | 'queued'

/** The words for each reason; `{position}`, `{ahead}` and `{eta}` are filled in. */
export type WaitingTexts = Readonly<Record<WaitReason, string>>

export const DEFAULT_WAITING_TEXTS: WaitingTexts = {
  offline:
    '⏳ GPU 服务器未上线，任务已排队（第{position}位），预计{eta}后开始；服务器上线后将自动处理，无需重新提交',
  starting: '⏳ GPU 服务器正在启动（加载模型），任务已排队（第{position}位），预计{eta}后开始',
  queued: '任务排队中（第{position}位），预计{eta}后开始',
}

/** What a user is told while a task waits. */
export function waitingText(
  texts: WaitingTexts,
  reason: WaitReason,
  where: { readonly position: number; readonly eta: number },
): string {
  const { position, eta } = where
  if (reason === 'queued' && eta <= 0) return '任务已提交，即将开始处理'
  return texts[reason]
    .replaceAll('{position}', String(position))
    .replaceAll('{ahead}', String(Math.max(0, position - 1)))
    .replaceAll('{eta}', humanDuration(eta))
}
