/**
 * The bridge's side of pulled work (docs/design.md §3.2, §3.3): it subscribes to the offers of the
 * task types its adapter runs on its persistent session, claims what is offered, and its births
 * say which types it runs and whether the broker kept its session. A real broker and the fake
 * run_server; the test client plays the gateway.
 */
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { startBridge } from '../../gpu-bridge/bridge.js'
import { bridgeTestConfig } from '../../gpu-bridge/config.js'
import { endClient } from '../../lib/mqtt.js'
import {
  BridgeEvent,
  GpuState,
  encodePayload,
  parsePayload,
  topicsFor,
} from '../../protocol/index.js'
import { log, startTestGpu } from '../helpers/relay.js'
import { offer } from '../helpers/offers.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const topics = topicsFor()

async function relayParts(gpuId: string) {
  const dir = await tempDir('bridge-offers')
  const broker = await startBroker(
    { host: '127.0.0.1', port: 0, wsPort: null, persistencePath: null, auth: null, tls: null },
    { log },
  )
  onTestFinished(() => broker.close())
  const gpu = await startTestGpu(dir, 60_000)
  const gateway = await mqtt.connectAsync(broker.url, { clientId: `test-gateway-${gpuId}` })
  onTestFinished(() => endClient(gateway))
  const states: GpuState[] = []
  const events: BridgeEvent[] = []
  gateway.on('message', (topic, payload) => {
    if (topic === topics.gpuState(gpuId)) {
      const parsed = parsePayload(GpuState, payload)
      if (parsed.ok) states.push(parsed.value)
    } else if (topic === topics.gpuEvents(gpuId)) {
      const parsed = parsePayload(BridgeEvent, payload)
      if (parsed.ok) events.push(parsed.value)
    }
  })
  await gateway.subscribeAsync([topics.gpuState(gpuId), topics.gpuEvents(gpuId)], { qos: 1 })
  const start = async () => {
    const bridge = await startBridge(
      bridgeTestConfig({
        gpuId,
        mqttUrl: broker.url,
        gatewayUrl: 'http://127.0.0.1:9',
        serviceUrl: gpu.url,
        dataDir: join(dir, 'bridge'),
      }),
      { log },
    )
    onTestFinished(() => bridge.close())
    return bridge
  }
  const claimOf = (taskId: string) => events.find((e) => e.kind === 'claim' && e.taskId === taskId)
  return { gateway, states, events, start, claimOf }
}

describe('bridge and task offers', () => {
  it('claims the offers of its type, and declares its types in births and heartbeats', async () => {
    const gpuId = `gpu-o${randomUUID().slice(0, 6)}`
    const { gateway, states, start, claimOf } = await relayParts(gpuId)
    await start()
    const birth = await waitFor(() => states.find((s) => s.reason === 'birth' && s.online), {
      what: 'birth',
    })
    expect(birth.types).toEqual(['heygem'])
    expect(birth.session).toBe('new')
    const task = offer(1)
    await gateway.publishAsync(topics.offers('heygem'), encodePayload(task), { qos: 1 })
    await waitFor(() => claimOf(task.taskId), { what: 'claim of the offer' })
    const heartbeat = await waitFor(() => states.find((s) => s.reason === 'heartbeat'), {
      what: 'heartbeat',
    })
    expect(heartbeat.types).toEqual(['heygem'])
    expect(heartbeat.session).toBeUndefined()
  })

  it('back after being off, says its session was resumed and claims what was offered meanwhile', async () => {
    const gpuId = `gpu-o${randomUUID().slice(0, 6)}`
    const { gateway, states, start, claimOf } = await relayParts(gpuId)
    const first = await start()
    await waitFor(() => states.some((s) => s.reason === 'birth' && s.online), { what: 'birth' })
    await first.close()
    const births = states.length
    const whileOff = offer(1)
    await gateway.publishAsync(topics.offers('heygem'), encodePayload(whileOff), { qos: 1 })

    await start()
    const birth = await waitFor(
      () => states.slice(births).find((s) => s.reason === 'birth' && s.online),
      { what: 'second birth' },
    )
    expect(birth.session).toBe('resumed')
    await waitFor(() => claimOf(whileOff.taskId), { what: 'claim of the offer made while off' })
  })
})
