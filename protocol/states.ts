import { z } from 'zod'

/** Task life (docs/design.md §4). The gateway's SQLite row holds one of these. */
export const TaskState = z.enum(['queued', 'processing', 'done', 'error', 'cancelled', 'expired'])
export type TaskState = z.infer<typeof TaskState>

export const TERMINAL_STATES: readonly TaskState[] = ['done', 'error', 'cancelled', 'expired']

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.includes(state)
}
