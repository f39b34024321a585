/**
 * Can run_server take a job now? It keeps its port closed while its models load (connection
 * refused: `down`), may answer before its engine exists (`initialized` false: `loading`), refuses
 * a wrong `api_secret` on every route but health (`unauthorized`, found by asking for the queue),
 * and a gpu-relay gateway answers health with `relay: true` (`relay`). Side-effect free.
 */
import type { Readiness } from './types.js'
import { requestJson } from '../../lib/http-client.js'
import { HEYGEM_PATHS, RunServerHealth } from '../../protocol/index.js'

/** How long one readiness probe may take. */
const PROBE_TIMEOUT_MS = 5_000

export async function probeRunServer(
  serviceUrl: string,
  auth: Readonly<Record<string, string>>,
  signal: AbortSignal,
): Promise<Readiness> {
  const probe = AbortSignal.any([signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)])
  const target = new URL(HEYGEM_PATHS.health, serviceUrl).toString()
  let reply
  try {
    reply = await requestJson(target, { timeoutMs: PROBE_TIMEOUT_MS, signal: probe })
  } catch (err) {
    return { state: 'down', detail: err instanceof Error ? err.message : String(err) }
  }
  const health = RunServerHealth.safeParse(reply.body)
  if (!health.success) {
    return { state: 'down', detail: `health answered HTTP ${String(reply.status)}, not JSON` }
  }
  if (health.data.relay === true) {
    return { state: 'relay', detail: `${target} is a gpu-relay gateway (relay: true)` }
  }
  if (health.data.code !== 0 || health.data.initialized !== true) {
    return { state: 'loading', detail: 'health says the engine is not initialized yet' }
  }
  // Health never needs the secret; the queue does, so it tells whether ours is right.
  try {
    const queue = await requestJson(new URL(HEYGEM_PATHS.queue, serviceUrl).toString(), {
      headers: auth,
      timeoutMs: PROBE_TIMEOUT_MS,
      signal: probe,
    })
    if (queue.status === 401) {
      return { state: 'unauthorized', detail: 'the GPU service refused our secret (401)' }
    }
  } catch (err) {
    return { state: 'down', detail: err instanceof Error ? err.message : String(err) }
  }
  return { state: 'ready', detail: 'initialized' }
}
