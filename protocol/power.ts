/**
 * Power on demand (docs/topics.md, `relay/power/{gpuId}`): what the gateway asks of an external
 * power agent, and the words the power view uses. QoS 1, not retained. A request is good until
 * its `expiresAt`: the gateway records it as failed if it is not acknowledged by then and asks
 * again (after its boot deadline), so an agent drops one that reaches it later (re-sent after a
 * reconnect, or held by the broker for an agent that was away).
 */
import { z } from 'zod'
import { IsoTime, Version } from './common.js'

export const PowerAction = z.enum(['start', 'stop'])
export type PowerAction = z.infer<typeof PowerAction>

/**
 * Why: `queued` (a task waits and no GPU is online or booting), `boot-deadline` (the GPU asked
 * for did not come up in time: asked again), `idle` (nothing to do for the idle window),
 * `manual` (an admin).
 */
export const PowerReason = z.enum(['queued', 'boot-deadline', 'idle', 'manual'])
export type PowerReason = z.infer<typeof PowerReason>

/** A GPU's power as the gateway sees it: asked for and what its presence says since. */
export const PowerState = z.enum(['off', 'booting', 'online', 'idle', 'shutting-down'])
export type PowerState = z.infer<typeof PowerState>

export const PowerMessage = z.object({
  v: Version,
  action: PowerAction,
  reason: PowerReason,
  /** The request's id, as recorded by the gateway (`GET /api/relay/power`). */
  requestId: z.string().min(1).max(64),
  /** Wall-clock time of the request, for display. */
  at: IsoTime,
  /** Wall-clock time after which the agent must not act on it (`at` + POWER_COMMAND_TIMEOUT_MS). */
  expiresAt: IsoTime,
})
export type PowerMessage = z.infer<typeof PowerMessage>
