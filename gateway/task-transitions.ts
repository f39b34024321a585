/**
 * The allowed moves of a task (docs/design.md §4): every change of `tasks.state` is one of these
 * named transitions, from one of its listed states (null: no row yet, or no row any more), and
 * writes one event of its kind to the outbox (task-outbox.ts) in the same transaction. The
 * lifecycle (task-lifecycle.ts) builds its guards from this table and from nowhere else.
 */
import type { TaskEventKind, TaskState } from '../protocol/index.js'

export interface Transition {
  /** The states the move starts from; null: the task does not exist yet. */
  readonly from: readonly (TaskState | null)[]
  /** The state after the move; null: the row is deleted. */
  readonly to: TaskState | null
  readonly kind: TaskEventKind
  /** The move starts a new attempt (attempt + 1). */
  readonly newAttempt: boolean
}

const ACTIVE = ['queued', 'processing'] as const
const TERMINAL = ['done', 'error', 'cancelled', 'expired'] as const

export const TRANSITIONS = {
  submit: { from: [null], to: 'queued', kind: 'submitted', newAttempt: false },
  cacheHit: { from: [null], to: 'done', kind: 'cache-hit', newAttempt: false },
  claim: { from: ['queued'], to: 'processing', kind: 'claimed', newAttempt: false },
  requeue: { from: ACTIVE, to: 'queued', kind: 'requeued', newAttempt: true },
  finish: { from: ['processing'], to: 'done', kind: 'done', newAttempt: false },
  fail: { from: ACTIVE, to: 'error', kind: 'failed', newAttempt: false },
  cancel: { from: ACTIVE, to: 'cancelled', kind: 'cancelled', newAttempt: false },
  expire: { from: ['queued'], to: 'expired', kind: 'expired', newAttempt: false },
  retry: { from: ['error'], to: 'queued', kind: 'retried', newAttempt: true },
  purge: { from: TERMINAL, to: null, kind: 'purged', newAttempt: false },
} as const satisfies Record<string, Transition>

export type TransitionName = keyof typeof TRANSITIONS

export const TRANSITION_NAMES = Object.keys(TRANSITIONS) as TransitionName[]

/** May `name` start from `state` (null: no row)? */
export function allowedFrom(name: TransitionName, state: TaskState | null): boolean {
  const from: readonly (TaskState | null)[] = TRANSITIONS[name].from
  return from.includes(state)
}

/** The SQL guard for a move on an existing row: `state IN ('queued', ...)`, from the table. */
export function stateGuard(name: TransitionName): string {
  const from: readonly (TaskState | null)[] = TRANSITIONS[name].from
  const states = from.filter((s): s is TaskState => s !== null)
  if (states.length === 0) throw new Error(`transition ${name} starts from no row`)
  return `state IN (${states.map((s) => `'${s}'`).join(', ')})`
}
