/**
 * The figures other parts feed (power state, power requests, webhook deliveries) and the
 * registry per gateway, on createGatewayMetrics alone: the power and webhook parts are wired to it
 * in gateway.ts.
 */
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { openDb } from '../../gateway/db.js'
import { createGatewayMetrics, type MetricsSources } from '../../gateway/metrics/gateway-metrics.js'
import { TaskOutbox } from '../../gateway/task-outbox.js'
import { parseSamples, valueOf } from '../helpers/prometheus.js'
import { tempDir } from '../helpers/temp-dir.js'

async function sources(power: { gpu_id: string; state: string }[] | null): Promise<MetricsSources> {
  const db = openDb(join(await tempDir('gateway-metrics'), 'gateway.sqlite'))
  onTestFinished(() => {
    db.close()
  })
  return {
    db,
    outbox: new TaskOutbox(db, () => undefined),
    gpus: () => [{ id: 'gpu-1', online: true, ready: false, capacity: 2 }],
    mqttLink: () => ({ state: 'refused', since: 0, refusedCode: 5 }),
    now: () => Date.now(),
    ...(power ? { power: { view: () => ({ gpus: power }) } } : {}),
  }
}

describe('gateway metrics', () => {
  it("shows each GPU's power state as one 1 among its states, and counts power requests and webhook deliveries", async () => {
    const power = [{ gpu_id: 'gpu-1', state: 'booting' }]
    const metrics = createGatewayMetrics(await sources(power))
    onTestFinished(() => metrics.close())
    metrics.powerRequest('start', 'ok')
    metrics.powerRequest('start', 'ok')
    metrics.powerRequest('stop', 'failed')
    metrics.webhookDelivery('delivered')
    let samples = parseSamples(await metrics.registry.metrics())
    const state = (s: string): number | undefined =>
      valueOf(samples, 'relay_gpu_power_state', { gpu_id: 'gpu-1', state: s })
    expect(['off', 'booting', 'online', 'idle', 'shutting-down'].map(state)).toEqual([
      0, 1, 0, 0, 0,
    ])
    expect(valueOf(samples, 'relay_power_requests_total', { action: 'start', outcome: 'ok' })).toBe(
      2,
    )
    expect(
      valueOf(samples, 'relay_power_requests_total', { action: 'stop', outcome: 'failed' }),
    ).toBe(1)
    expect(valueOf(samples, 'relay_webhook_deliveries_total', { outcome: 'delivered' })).toBe(1)
    // Read at each scrape: the state moves with the power part's view.
    power[0] = { gpu_id: 'gpu-1', state: 'online' }
    samples = parseSamples(await metrics.registry.metrics())
    expect(state('online')).toBe(1)
    expect(state('booting')).toBe(0)
    // Online but not ready; a refused MQTT link is down; no embedded broker: no client count.
    expect(valueOf(samples, 'relay_gpu_ready', { gpu_id: 'gpu-1' })).toBe(0)
    expect(valueOf(samples, 'relay_gpu_capacity', { gpu_id: 'gpu-1' })).toBe(2)
    expect(valueOf(samples, 'relay_mqtt_link_up')).toBe(0)
    expect(samples.some((s) => s.name === 'relay_mqtt_clients_connected')).toBe(false)
  })

  it("keeps two gateways' figures apart, and off prom-client's global registry", async () => {
    const { register } = await import('prom-client')
    const one = createGatewayMetrics(await sources(null))
    const two = createGatewayMetrics(await sources(null))
    onTestFinished(() => {
      one.close()
      two.close()
    })
    one.webhookDelivery('failed')
    const text = await two.registry.metrics()
    expect(
      valueOf(parseSamples(text), 'relay_webhook_deliveries_total', { outcome: 'failed' }),
    ).toBeUndefined()
    expect(text).not.toContain('relay_gpu_power_state')
    expect(await register.metrics()).not.toContain('relay_')
  })
})
