import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { requestJson } from '../../lib/http-client.js'
import { finalStatus, submitFresh, taskStatus } from '../helpers/pc.js'
import { powerSignals, powerStateOf, startPoweredGateway } from '../helpers/power.js'
import { startTestBridge, startTestGpu, testMqttClient } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/** Whether health shows gpu-1 online. */
async function gpuOnline(url: string): Promise<boolean> {
  const health = await (await fetch(`${url}/api/heygem/health`)).text()
  return /"id":"gpu-1","online":true/.test(health)
}

describe('GPU power on demand', () => {
  it('a task submitted to a sleeping system asks for power once; the GPU the command starts runs it', async () => {
    const dir = await tempDir('power-wake')
    const signals = powerSignals(dir)
    const gateway = await startPoweredGateway(dir, { signals })
    expect(powerStateOf(gateway)).toBe('off')

    const first = await submitFresh(gateway.url)
    const [start] = await signals.waitFor('start')
    expect(start).toMatchObject({ action: 'start', gpuId: 'gpu-1', reason: 'queued' })
    expect(powerStateOf(gateway)).toBe('booting')
    // Another task while it boots: the same boot, no second request.
    const second = await submitFresh(gateway.url)

    // The "cloud machine" comes up a while after the command: GPU service and bridge.
    const gpu = await startTestGpu(dir, 200)
    await startTestBridge(dir, { gateway, gpu })
    expect((await finalStatus(gateway.url, first)).status).toBe('done')
    expect((await finalStatus(gateway.url, second)).status).toBe('done')

    expect((await signals.read()).filter((s) => s.action === 'start')).toHaveLength(1)
    const view = gateway.power.view()
    expect(view.requests).toHaveLength(1)
    const request = await waitFor(() => {
      const r = gateway.power.view().requests[0]
      return r?.outcome === 'ok' ? r : null
    })
    expect(request).toMatchObject({
      id: start?.requestId,
      gpu_id: 'gpu-1',
      action: 'start',
      reason: 'queued',
      channel: 'command,mqtt',
      detail: 'command: exit 0; mqtt: published',
    })
    // The boot (request → ready) is learned, for the estimates.
    await waitFor(() => gateway.power.recentBootMs().length === 1, { what: 'boot learned' })
    expect(gateway.power.recentBootMs()[0]).toBeGreaterThan(0)
    expect(['online', 'idle']).toContain(powerStateOf(gateway))
    // Health's per-GPU view shows it too.
    const health = await requestJson(`${gateway.url}/api/heygem/health`)
    expect(JSON.stringify(health.body)).toMatch(/"power":"(online|idle)"/)
  })

  it('while the GPU boots, the estimate of a later task counts down from the power-on request, not from its own submit', async () => {
    const dir = await tempDir('power-eta')
    const signals = powerSignals(dir)
    const gateway = await startPoweredGateway(dir, {
      signals,
      config: { bootEstimateS: 600, runEstimateS: 60 },
    })
    const first = await submitFresh(gateway.url)
    await signals.waitFor('start')
    expect(powerStateOf(gateway)).toBe('booting')
    // Time itself is what is tested: the boot has gone on for a few seconds when the second
    // task comes. The GPU never comes up here.
    await delay(3_000)
    const second = await submitFresh(gateway.url, 'K2')
    const etaOf = async (id: string): Promise<number> =>
      Number((await taskStatus(gateway.url, id)).eta_seconds)
    const [a, b] = [await etaOf(first), await etaOf(second)]
    // The same boot for both: 600 s counted from the request, so 3 s of it are gone for the
    // second task too (from its own submit it would be 600 + the 60 s run ahead = 660).
    expect(a).toBeLessThanOrEqual(597)
    expect(a).toBeGreaterThan(580)
    expect(b).toBeLessThanOrEqual(657)
    expect(b - a).toBeGreaterThanOrEqual(59)
    expect(b - a).toBeLessThanOrEqual(61)
  })

  it('after the idle window with nothing to do, exactly one power-off is asked for, never while a task runs', async () => {
    const dir = await tempDir('power-idle')
    const signals = powerSignals(dir)
    const idleMs = 1_500
    const gateway = await startPoweredGateway(dir, { signals, power: { idleMs } })
    const id = await submitFresh(gateway.url)
    await signals.waitFor('start')
    const gpu = await startTestGpu(dir, 3_000) // runs longer than the idle window
    const bridge = await startTestBridge(dir, { gateway, gpu })
    await waitFor(() => gateway.store.get(id)?.state === 'processing', { what: 'task running' })
    expect(powerStateOf(gateway)).toBe('online')
    const [stop] = await signals.waitFor('stop')
    // Asked only once the task was done and the window had passed.
    expect(gateway.store.get(id)?.state).toBe('done')
    expect(stop).toMatchObject({ gpuId: 'gpu-1', reason: 'idle' })
    expect(powerStateOf(gateway)).toBe('shutting-down')

    // Still online (the machine takes its time to go): three more windows, no second request.
    const asked = Date.now()
    await waitFor(() => Date.now() - asked > 3 * idleMs, { what: 'three idle windows' })
    await bridge.close()
    await waitFor(() => powerStateOf(gateway) === 'off', { what: 'GPU off' })
    expect((await signals.read()).filter((s) => s.action === 'stop')).toHaveLength(1)
    const stops = gateway.power.view().requests.filter((r) => r.action === 'stop')
    expect(stops).toHaveLength(1)
    expect(stops[0]).toMatchObject({ reason: 'idle', outcome: 'ok' })
  })

  it('a submit during shutdown asks for power again, before the GPU has gone and after', async () => {
    const dir = await tempDir('power-shutdown')
    const signals = powerSignals(dir)
    const gateway = await startPoweredGateway(dir, { signals, power: { idleMs: 1_000 } })
    const gpu = await startTestGpu(dir, 200)
    const bridge = await startTestBridge(dir, { gateway, gpu })
    await signals.waitFor('stop')
    expect(powerStateOf(gateway)).toBe('shutting-down')

    // Still online after the stop was asked for: a submit asks for it again, and the machine
    // going down is granted nothing (the task would die with it): its claim is refused, and the
    // task waits, queued.
    const admin = await testMqttClient(gateway.mqttUrl, 'admin')
    const refusals: string[] = []
    admin.on('message', (_topic, payload) => {
      const message = JSON.parse(payload.toString()) as { kind?: string; reason?: string }
      if (message.kind === 'claim-refused') refusals.push(message.reason ?? '')
    })
    await admin.subscribeAsync('relay/gpus/gpu-1/control', { qos: 1 })
    const during = await submitFresh(gateway.url)
    const [again] = await signals.waitFor('start')
    expect(again).toMatchObject({ gpuId: 'gpu-1', reason: 'queued' })
    expect(powerStateOf(gateway)).toBe('booting')
    await waitFor(() => refusals.includes('not-ready'), { what: 'the claim refused' })
    expect((await taskStatus(gateway.url, during)).status).toBe('queued')
    // The stop takes (the machine goes), the start brings it back: the task runs there.
    await bridge.close()
    await waitFor(async () => !(await gpuOnline(gateway.url)), { what: 'GPU gone' })
    expect(powerStateOf(gateway)).toBe('booting')
    const back = await startTestBridge(dir, { gateway, gpu })
    expect((await finalStatus(gateway.url, during)).status).toBe('done')

    // Idle again: stopped again, and this time it goes.
    await signals.waitFor('stop', 2)
    await back.close()
    await waitFor(() => powerStateOf(gateway) === 'off', { what: 'GPU off' })
    const after = await submitFresh(gateway.url)
    await signals.waitFor('start', 2)
    expect(powerStateOf(gateway)).toBe('booting')
    await startTestBridge(dir, { gateway, gpu })
    expect((await finalStatus(gateway.url, after)).status).toBe('done')
    const actions = (await signals.read()).map((s) => `${s.action}:${s.reason}`)
    expect(actions).toEqual(['stop:idle', 'start:queued', 'stop:idle', 'start:queued'])
  })
})
