/**
 * How long until a GPU is ready while none is (estimates.ts): the median of recent boots
 * (power-on, or a GPU online whose service loads, to ready: boot-history.ts), the configured
 * GPU_BOOT_ESTIMATE_S until there is any. While the wait goes on the estimate counts down; once
 * it is (nearly) over it is made again, never left standing at a floor: from the slower boots
 * seen that would still be under way, else as one more boot from now.
 */
import { median } from './run-estimate.js'

/** The shortest boot estimate shown: the floor a countdown stops at before it is made again. */
export const MIN_BOOT_REMAINING_S = 30

/** Recent boots (ms) as seconds, newest first, and their median (else the configured one). */
export function bootEstimateS(recentMs: readonly number[], defaultS: number): number {
  const m = median(recentMs)
  return m === null ? defaultS : m / 1000
}

/**
 * Seconds left of the boot estimate `elapsedS` into the wait. `historyS`: the recent boots
 * (seconds); `bootS`: their median or the configured time.
 */
export function bootRemainingS(o: {
  readonly bootS: number
  readonly elapsedS: number
  readonly historyS?: readonly number[]
}): number {
  const elapsed = Math.max(0, o.elapsedS)
  const floor = MIN_BOOT_REMAINING_S
  // Counting down, to the floor while the expected boot time has not quite passed.
  if (elapsed < o.bootS) return Math.round(Math.max(floor, o.bootS - elapsed))
  // Overdue: boots as slow as this one has been took this long (their median), if any did.
  const slower = (o.historyS ?? []).filter((s) => s - elapsed >= floor)
  const fromSlower = median(slower)
  if (fromSlower !== null) return Math.round(fromSlower - elapsed)
  // Else a boot that has taken this long is taken to need one more period from here: the
  // estimate counts down again from there (never below the floor, never standing still).
  const period = Math.max(o.bootS, floor)
  const periods = Math.ceil((elapsed + floor - o.bootS) / period)
  return Math.round(o.bootS + Math.max(1, periods) * period - elapsed)
}
