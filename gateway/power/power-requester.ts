/**
 * Makes one power request on every configured channel at once: the command, the URL and the MQTT
 * message on `relay/power/{gpuId}` (always, for an external power agent). The request is recorded
 * before anything runs and finished with its outcome: `ok` when every channel worked, `timeout`
 * when the command or URL timed out, else `failed`. Listeners (metrics) hear each outcome.
 */
import { randomUUID } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { PowerSettings } from '../config.js'
import type { PowerOutcome, PowerStore } from './power-store.js'
import { describeCommand, runPowerCommand, type RunningCommand } from './power-command.js'
import { describeUrl, postPowerUrl } from './power-url.js'
import {
  PROTOCOL_VERSION,
  type PowerAction,
  type PowerMessage,
  type PowerReason,
  type Topics,
} from '../../protocol/index.js'

export interface PowerRequestOutcome {
  readonly id: string
  readonly gpuId: string
  readonly action: PowerAction
  readonly reason: PowerReason
  readonly outcome: Exclude<PowerOutcome, 'pending'>
}

export type PowerRequestListener = (outcome: PowerRequestOutcome) => void

interface ChannelResult {
  readonly outcome: 'ok' | 'failed' | 'timeout'
  readonly detail: string
}

export interface PowerRequesterDeps {
  readonly settings: PowerSettings
  readonly store: PowerStore
  readonly client: MqttClient
  readonly topics: Topics
  readonly log: Logger
  /** Wall-clock ms (display). */
  readonly now: () => number
  /** Relay-clock ms. */
  readonly relay: () => number
}

export class PowerRequester {
  readonly #d: PowerRequesterDeps
  readonly #listeners = new Set<PowerRequestListener>()
  readonly #running = new Set<RunningCommand>()
  readonly #abort = new AbortController()

  constructor(deps: PowerRequesterDeps) {
    this.#d = deps
  }

  onRequest(listener: PowerRequestListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Record and send a request; returns its id at once, the outcome comes later. */
  request(r: { gpuId: string; action: PowerAction; reason: PowerReason }): string {
    const { settings, store, log, now } = this.#d
    const id = randomUUID()
    const at = now()
    const command = r.action === 'start' ? settings.onCommand : settings.offCommand
    const url = r.action === 'start' ? settings.onUrl : settings.offUrl
    const channels = [...(command ? ['command'] : []), ...(url ? ['url'] : []), 'mqtt']
    store.add({ id, ...r, channels, at, rcAt: this.#d.relay() })
    log.info({ requestId: id, ...r, channels }, 'power requested')
    const iso = new Date(at).toISOString()
    const work: Promise<ChannelResult>[] = [
      ...(command ? [this.#command({ id, command, ...r })] : []),
      ...(url ? [this.#post({ id, url, iso, ...r })] : []),
      this.#publish({ id, iso, ...r }),
    ]
    void Promise.all(work).then((results) => {
      this.#finish({ id, ...r }, results)
    })
    return id
  }

  /** Gateway shutdown: running commands are killed, calls aborted. */
  close(): void {
    this.#abort.abort()
    for (const running of this.#running) running.kill()
  }

  #finish(r: Omit<PowerRequestOutcome, 'outcome'>, results: readonly ChannelResult[]): void {
    const outcome = results.some((c) => c.outcome === 'timeout')
      ? 'timeout'
      : results.every((c) => c.outcome === 'ok')
        ? 'ok'
        : 'failed'
    const detail = results.map((c) => c.detail).join('; ')
    try {
      this.#d.store.finish(r.id, { outcome, detail, at: this.#d.now() })
    } catch (err) {
      this.#d.log.error({ err, requestId: r.id }, 'power request outcome not recorded')
    }
    const ctx = { requestId: r.id, gpuId: r.gpuId, action: r.action, outcome, detail }
    if (outcome === 'ok') this.#d.log.info(ctx, 'power request finished')
    else this.#d.log.warn(ctx, 'power request failed')
    for (const listener of this.#listeners) {
      try {
        listener({ ...r, outcome })
      } catch (err) {
        this.#d.log.error({ err }, 'power request listener failed')
      }
    }
  }

  async #command(r: {
    id: string
    command: string
    gpuId: string
    action: PowerAction
    reason: PowerReason
  }): Promise<ChannelResult> {
    const running = runPowerCommand({
      command: r.command,
      gpuId: r.gpuId,
      action: r.action,
      reason: r.reason,
      requestId: r.id,
      timeoutMs: this.#d.settings.commandTimeoutMs,
    })
    this.#running.add(running)
    const result = await running.done
    this.#running.delete(running)
    const outcome =
      result.kind === 'timeout'
        ? 'timeout'
        : result.kind === 'exit' && result.code === 0
          ? 'ok'
          : 'failed'
    return { outcome, detail: describeCommand(result) }
  }

  async #post(r: {
    id: string
    url: string
    iso: string
    gpuId: string
    action: PowerAction
    reason: PowerReason
  }): Promise<ChannelResult> {
    const result = await postPowerUrl({
      url: r.url,
      body: { gpu_id: r.gpuId, action: r.action, reason: r.reason, request_id: r.id, at: r.iso },
      timeoutMs: this.#d.settings.commandTimeoutMs,
      signal: this.#abort.signal,
    })
    const outcome =
      result.kind === 'timeout'
        ? 'timeout'
        : result.kind === 'status' && result.status >= 200 && result.status < 300
          ? 'ok'
          : 'failed'
    return { outcome, detail: describeUrl(result) }
  }

  /**
   * QoS 1, not retained; `ok` once the broker has it (PUBACK). One not acknowledged in time is
   * recorded as failed and taken out of the client's outgoing store, so the session does not send
   * it again after a reconnect; `expiresAt` tells an agent that gets it late anyway (the broker
   * had it, or held it while the agent was away) not to act on it.
   */
  #publish(r: {
    id: string
    iso: string
    gpuId: string
    action: PowerAction
    reason: PowerReason
  }): Promise<ChannelResult> {
    const { client, topics, settings } = this.#d
    const message: PowerMessage = {
      v: PROTOCOL_VERSION,
      action: r.action,
      reason: r.reason,
      requestId: r.id,
      at: r.iso,
      expiresAt: new Date(Date.parse(r.iso) + settings.commandTimeoutMs).toISOString(),
    }
    // Not queued for later: a stop delivered after the link comes back, long after it was
    // recorded as failed, could switch off a GPU that is working by then.
    if (!client.connected) {
      return Promise.resolve({ outcome: 'failed', detail: 'mqtt: not connected' })
    }
    return new Promise((resolve) => {
      let settled = false
      const settle = (result: ChannelResult): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(result)
      }
      const acked = (err?: Error): void => {
        settle(
          err
            ? { outcome: 'failed', detail: 'mqtt: not published' }
            : { outcome: 'ok', detail: 'mqtt: published' },
        )
      }
      const timer = setTimeout(() => {
        settle({ outcome: 'failed', detail: 'mqtt: not acknowledged in time (withdrawn)' })
        withdraw(client, acked)
      }, settings.commandTimeoutMs)
      client.publish(
        topics.power(r.gpuId),
        JSON.stringify(message),
        { qos: 1, retain: false },
        acked,
      )
    })
  }
}

/** Takes the unacknowledged publish whose callback is `cb` out of the client's outgoing store. */
function withdraw(client: MqttClient, cb: (err?: Error) => void): void {
  for (const [id, entry] of Object.entries(client.outgoing)) {
    if (entry.cb === cb) client.removeOutgoingMessage(Number(id))
  }
}
