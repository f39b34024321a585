/**
 * The task event stream (docs/design.md §3.7): one row of the gateway's outbox per change of a
 * task, committed in the same transaction as the change. In-process subscribers (the MQTT admin
 * snapshots), `GET /api/relay/events` (server-sent events, resumable with `Last-Event-ID`) and,
 * later, the dashboard, webhooks and metrics all read these, so none can miss or invent a change.
 */
import { z } from 'zod'
import { TaskState } from './states.js'
import { Attempt, GpuId, IsoTime, Progress, Stage, TaskId, Version } from './common.js'

/** What happened: one kind per transition of the lifecycle table, plus progress and a stored result. */
export const TaskEventKind = z.enum([
  'submitted',
  'cache-hit',
  'claimed',
  'progress',
  'result-stored',
  'done',
  'failed',
  'requeued',
  'cancelled',
  'expired',
  'retried',
  'purged',
])
export type TaskEventKind = z.infer<typeof TaskEventKind>

export const TaskEvent = z.object({
  v: Version,
  /** The outbox row id: strictly increasing, the SSE `id:` and what `Last-Event-ID` resumes from. */
  id: z.number().int().min(1),
  kind: TaskEventKind,
  taskId: TaskId,
  /** The attempt after the change. */
  attempt: Attempt,
  /** Wall-clock time of the change, for display only. */
  at: IsoTime,
  /** The state before the change; null for a new task. */
  from: TaskState.nullable(),
  /** The state after the change; null once the task is purged. */
  state: TaskState.nullable(),
  gpuId: GpuId.nullable(),
  progress: Progress.optional(),
  stage: Stage.optional(),
  /** Why, in English, for operators (e.g. `retry: GPU went offline`); never shown to users as is. */
  note: z.string().max(500).optional(),
})
export type TaskEvent = z.infer<typeof TaskEvent>
