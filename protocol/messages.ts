/**
 * MQTT payloads (docs/design.md §5). All JSON, all with `"v": 1`, all readable in MQTT Explorer.
 * Producers build them with these types; consumers parse with these schemas and drop what fails.
 */
import { z } from 'zod'
import { TaskState } from './states.js'
import {
  Attempt,
  FileRef,
  GpuId,
  IsoTime,
  Progress,
  Seq,
  Stage,
  TaskId,
  TaskType,
  Version,
} from './common.js'

/** Longest texts the events carry (the schemas' limits); producers clip to these. */
export const TEXT_LIMITS = { progressMessage: 500, errorMessage: 2000, serviceTaskId: 200 } as const

/** Shorten `text` to `max` characters, marking the cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

/** Most tasks a birth can list; a bridge holding more lists the oldest. */
export const MAX_HOLDING = 10_000

/**
 * The GPU service as its bridge sees it: `ready`; `down` (connection refused: the machine is
 * booting, or the service is loading its models with its port still closed); `loading` (it answers
 * but is not initialized); `unauthorized` (it refuses the bridge's secret); `relay` (the URL points
 * to a gpu-relay gateway, not a GPU service).
 */
export const ServiceReadiness = z.enum(['ready', 'down', 'loading', 'unauthorized', 'relay'])
export type ServiceReadiness = z.infer<typeof ServiceReadiness>

/** What a bridge holds in its inbox, reported in its birth so the gateway can reconcile (§3.3). */
export const HoldingPhase = z.enum(['received', 'claiming', 'running', 'finished'])
export type HoldingPhase = z.infer<typeof HoldingPhase>

export const Holding = z.object({
  taskId: TaskId,
  attempt: Attempt,
  phase: HoldingPhase,
  serviceTaskId: z.string().max(TEXT_LIMITS.serviceTaskId).optional(),
})
export type Holding = z.infer<typeof Holding>

/**
 * `relay/gpus/{gpuId}/state`, retained. Birth and heartbeats carry everything; the Last Will is
 * only `{v, online:false, epoch}`. A message whose epoch is older than the last birth is stale.
 */
export const GpuState = z.object({
  v: Version,
  online: z.boolean(),
  epoch: z.number().int().min(0),
  since: IsoTime.optional(),
  capacity: z.number().int().min(1).max(64).optional(),
  adapter: z.string().max(40).optional(),
  version: z.string().max(40).optional(),
  /** How often the bridge re-publishes its state; the gateway declares it offline after 3 misses. */
  heartbeatMs: z.number().int().min(100).max(600_000).optional(),
  /**
   * 'birth' on each new connection and when the gateway asks (`rebirth`), 'heartbeat' after;
   * absent in a will. Only a live birth (not a retained copy) is reconciled (docs/design.md §3.3).
   */
  reason: z.enum(['birth', 'heartbeat', 'shutdown']).optional(),
  /** What the inbox holds; carried by births only. */
  holding: z.array(Holding).max(MAX_HOLDING).optional(),
  /**
   * Whether the GPU service next to the bridge can take work now. A bridge whose service is down,
   * still loading its models, or refusing the bridge's secret is online but not ready: it claims
   * nothing, nothing is routed to it and it is not counted in estimates. Absent: ready (bridges
   * from before readiness existed).
   */
  ready: z.boolean().optional(),
  /** Why (not) ready, for admins and the user's words. */
  service: ServiceReadiness.optional(),
  /** The task types this GPU runs (its adapter's capabilities); absent: `['heygem']`. */
  types: z.array(TaskType).min(1).max(16).optional(),
  /**
   * Births only: whether the broker kept this bridge's session (CONNACK sessionPresent). A
   * `resumed` session still holds the offers published while the bridge was away, so the gateway
   * does not publish the backlog to it again; a `new` one (or an absent field) is sent what it
   * does not hold. `settled`: a later birth of a resumed session, once the offers the broker
   * queued have stopped arriving: what it still lacks the broker lost (a Mosquitto restored from
   * its last autosave, a session taken over), and the gateway sends it.
   */
  session: z.enum(['new', 'resumed', 'settled']).optional(),
})
export type GpuState = z.infer<typeof GpuState>

/**
 * One unit of work for one attempt: offered on `relay/offers/{type}` to every bridge that runs
 * the type, or sent to one bridge on `relay/gpus/{gpuId}/tasks` when it lacks it (reconcile).
 */
export const TaskMessage = z.object({
  v: Version,
  taskId: TaskId,
  attempt: Attempt,
  /** Gateway-wide submit order; a bridge runs the lowest first (§2: "in order"). */
  order: z.number().int().min(1),
  type: TaskType,
  input: z.object({ audio: FileRef, video: FileRef }),
  options: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  expiresAt: IsoTime,
})
export type TaskMessage = z.infer<typeof TaskMessage>

/**
 * Why a claim was refused. `not-next` (an older task this GPU can run is waiting), `at-capacity`
 * (the GPU already runs as many tasks as it declared) and `not-ready` (the gateway does not see
 * this GPU online and ready yet, e.g. its claim overtook its birth; the gateway asks it for one)
 * mean "claim again later"; the others mean "drop this attempt": it is not yours to run
 * (`not-eligible`: this GPU does not run the task's type).
 */
export const ClaimRefusal = z.enum([
  'unknown-task',
  'not-queued',
  'stale-attempt',
  'expired',
  'not-next',
  'not-eligible',
  'at-capacity',
  'not-ready',
])
export type ClaimRefusal = z.infer<typeof ClaimRefusal>

/**
 * `relay/gpus/{gpuId}/control`: the gateway's answers. `ack` confirms a terminal event
 * (`done`/`error`) so the bridge can stop re-sending it; it is our addition to docs/design.md §5.
 */
export const ControlMessage = z.discriminatedUnion('kind', [
  z.object({ v: Version, kind: z.literal('claim-granted'), taskId: TaskId, attempt: Attempt }),
  z.object({
    v: Version,
    kind: z.literal('claim-refused'),
    taskId: TaskId,
    attempt: Attempt,
    reason: ClaimRefusal,
  }),
  z.object({
    v: Version,
    kind: z.literal('cancel'),
    taskId: TaskId,
    attempt: Attempt,
    reason: z.string().max(200).optional(),
  }),
  z.object({ v: Version, kind: z.literal('ack'), taskId: TaskId, attempt: Attempt, seq: Seq }),
])

/**
 * Also on `relay/gpus/{gpuId}/control`, without a task: "publish a birth now". The gateway asks
 * when it sees a GPU online without having seen its birth (a retained state after the gateway
 * restarted, a heartbeat after a gap), because only a live birth's holding list may be reconciled.
 */
export const RebirthRequest = z.object({ v: Version, kind: z.literal('rebirth') })
export type RebirthRequest = z.infer<typeof RebirthRequest>

export const GpuControl = z.union([ControlMessage, RebirthRequest])
export type GpuControl = z.infer<typeof GpuControl>
export type ControlMessage = z.infer<typeof ControlMessage>

const eventBase = { v: Version, taskId: TaskId, attempt: Attempt, seq: Seq }

/** `relay/gpus/{gpuId}/events`: what a bridge reports; applied once per (taskId, attempt, seq). */
export const BridgeEvent = z.discriminatedUnion('kind', [
  /** `epoch`: the bridge connection that claims; a birth of a later epoch that does not hold the
   * task proves the bridge lost it. */
  z.object({ ...eventBase, kind: z.literal('claim'), epoch: z.number().int().min(0) }),
  z.object({
    ...eventBase,
    kind: z.literal('progress'),
    progress: Progress,
    stage: Stage,
    message: z.string().max(TEXT_LIMITS.progressMessage).optional(),
    /** Frames rendered and expected, when the GPU service reports them (run_server does). */
    currentFrame: z.number().int().min(0).optional(),
    totalFrames: z.number().int().min(0).optional(),
  }),
  z.object({
    ...eventBase,
    kind: z.literal('done'),
    result: FileRef,
    elapsedMs: z.number().min(0),
  }),
  z.object({
    ...eventBase,
    kind: z.literal('error'),
    message: z.string().max(TEXT_LIMITS.errorMessage),
    retryable: z.boolean(),
  }),
])
export type BridgeEvent = z.infer<typeof BridgeEvent>

/** `relay/tasks/{taskId}`, retained: a task as admins see it. No owner secrets. */
export const TaskSnapshot = z.object({
  v: Version,
  taskId: TaskId,
  state: TaskState,
  attempt: Attempt,
  gpuId: GpuId.nullable(),
  progress: Progress,
  stage: Stage.nullable(),
  createdAt: IsoTime,
  updatedAt: IsoTime,
  errorMsg: z.string().nullable(),
})
export type TaskSnapshot = z.infer<typeof TaskSnapshot>

/** `relay/queue`, retained. */
export const QueueSnapshot = z.object({
  v: Version,
  queued: z.number().int().min(0),
  processing: z.number().int().min(0),
  gpusOnline: z.number().int().min(0),
  etaSeconds: z.number().min(0),
})
export type QueueSnapshot = z.infer<typeof QueueSnapshot>

/** Parse a raw MQTT payload as JSON and then as `schema`; never throws. */
export function parsePayload<T>(
  schema: z.ZodType<T>,
  payload: Buffer | Uint8Array | string,
): { ok: true; value: T } | { ok: false; error: string } {
  let json: unknown
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'))
  } catch {
    return { ok: false, error: 'payload is not JSON' }
  }
  const result = schema.safeParse(json)
  if (result.success) return { ok: true, value: result.data }
  return { ok: false, error: z.prettifyError(result.error) }
}

export function encodePayload(message: object): Buffer {
  return Buffer.from(JSON.stringify(message))
}
