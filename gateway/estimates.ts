/**
 * Time estimates and the words users read about them (docs/design.md §9). A task's start is
 * worked out slot by slot: the ready GPUs' slots (their capacities) are free when what runs on
 * them is expected to end, and each task ahead takes the next free slot for its expected run
 * (run-estimate.ts: per second of audio, else the median). While no GPU is ready every slot
 * opens when the boot is expected to be over (boot-estimate.ts), which counts down as the wait
 * goes on and is made again once over, so the words a user reads move with time.
 */
import { humanDuration } from '../lib/words.js'

export { humanDuration }
export { MIN_BOOT_REMAINING_S, bootRemainingS } from './boot-estimate.js'

export interface StartInput {
  /** Queued tasks ahead of this one. */
  readonly ahead: number
  /** Their expected runs, added up (s). */
  readonly aheadWorkS: number
  /** What is left of each running task (s); counted only while a GPU is ready. */
  readonly runningS: readonly number[]
  /** A GPU is online and ready. */
  readonly ready: boolean
  /** Tasks run at once: the ready GPUs' capacities (while none is ready, those expected). */
  readonly capacity: number
  /** Seconds until a GPU is expected to be ready, when none is. */
  readonly bootS: number
}

/** Seconds until this task is expected to start. */
export function startEtaS(input: StartInput): number {
  const slots = new Array<number>(Math.max(1, Math.floor(input.capacity))).fill(
    input.ready ? 0 : Math.max(0, input.bootS),
  )
  const take = (runS: number): void => {
    let first = 0
    for (let i = 1; i < slots.length; i++) if ((slots[i] ?? 0) < (slots[first] ?? 0)) first = i
    slots[first] = (slots[first] ?? 0) + Math.max(0, runS)
  }
  if (input.ready) for (const left of [...input.runningS].sort((a, b) => a - b)) take(left)
  const each = input.ahead > 0 ? input.aheadWorkS / input.ahead : 0
  for (let i = 0; i < input.ahead; i++) take(each)
  return Math.round(Math.min(...slots))
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
