import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import mqtt from 'mqtt'
import { pino } from 'pino'
import { z } from 'zod'
import { startBroker } from '../../broker/broker.js'
import { requestJson } from '../../lib/http-client.js'
import { PowerMessage } from '../../protocol/index.js'
import { fakePowerCommand } from '../fakes/power-command.js'
import { submitFresh } from '../helpers/pc.js'
import { powerSignals, startPoweredGateway } from '../helpers/power.js'
import { testMqttClient } from '../helpers/relay.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const ADMIN_TOKEN = 'test-admin-token-0123456789'

/** A test-owned HTTP server that records every request's method, type and JSON body. */
async function recordingServer(
  status = 200,
): Promise<{ url: string; calls: { method: string; type: string; body: unknown }[] }> {
  const calls: { method: string; type: string; body: unknown }[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString() || 'null')
      calls.push({ method: req.method ?? '', type: req.headers['content-type'] ?? '', body })
      res.statusCode = status
      res.end('{"secret":"never recorded"}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${String(port)}/power?token=s3cret`, calls }
}

describe('how power is asked for', () => {
  it('a power command that hangs past POWER_COMMAND_TIMEOUT_MS is killed and recorded as timed out', async () => {
    const dir = await tempDir('power-timeout')
    const signals = powerSignals(dir)
    const gateway = await startPoweredGateway(dir, {
      signals,
      power: { onCommand: fakePowerCommand(signals.file, 'hang'), commandTimeoutMs: 1_500 },
    })
    await submitFresh(gateway.url)
    const [start] = await signals.waitFor('start')
    const request = await waitFor(() => {
      const r = gateway.power.view().requests[0]
      return r && r.outcome !== 'pending' ? r : null
    })
    expect(request).toMatchObject({
      outcome: 'timeout',
      detail: 'command: timed out (killed); mqtt: published',
    })
    // Killed for real (its process group): the fake is gone.
    expect(() => process.kill(start?.pid ?? 0, 0)).toThrow(/ESRCH/)
  })

  it('publishes the request on relay/power/{gpuId}, which a subscriber with the admin login receives', async () => {
    const dir = await tempDir('power-mqtt')
    const gateway = await startPoweredGateway(dir, {
      signals: powerSignals(dir),
      power: { onCommand: null, offCommand: null },
    })
    const admin = await testMqttClient(gateway.mqttUrl, 'admin')
    const received: { topic: string; retain: boolean; message: PowerMessage }[] = []
    admin.on('message', (topic, payload, packet) => {
      received.push({
        topic,
        retain: packet.retain,
        message: PowerMessage.parse(JSON.parse(payload.toString())),
      })
    })
    await admin.subscribeAsync('relay/power/#', { qos: 1 })
    await submitFresh(gateway.url)
    const [got] = await waitFor(() => (received.length > 0 ? received : null), {
      what: 'power message',
    })
    expect(got).toMatchObject({
      topic: 'relay/power/gpu-1',
      retain: false,
      message: {
        v: 1,
        action: 'start',
        reason: 'queued',
        requestId: gateway.power.view().requests[0]?.id,
      },
    })
    expect(gateway.power.view().requests[0]?.channel).toBe('mqtt')
  })

  it('a power message not acknowledged in time is recorded as failed and not sent again when the link comes back', async () => {
    const dir = await tempDir('power-withdrawn')
    const broker = await startBroker(
      { host: '127.0.0.1', port: 0, wsPort: null, persistencePath: null, auth: null, tls: null },
      { log: pino({ level: 'silent' }) },
    )
    onTestFinished(() => broker.close())
    const proxy = await startTcpProxy(Number(new URL(broker.url).port))
    onTestFinished(() => proxy.close())
    const agent = await mqtt.connectAsync(broker.url, { clientId: 'power-agent', clean: false })
    onTestFinished(() => agent.endAsync(true))
    const received: PowerMessage[] = []
    agent.on('message', (_topic, payload) => {
      received.push(PowerMessage.parse(JSON.parse(payload.toString())))
    })
    await agent.subscribeAsync('relay/power/#', { qos: 1 })
    const gateway = await startPoweredGateway(dir, {
      signals: powerSignals(dir),
      power: { onCommand: null, offCommand: null, commandTimeoutMs: 1_000 },
      config: { mqttUrl: proxy.url('mqtt') },
    })
    // The link goes quiet (half-open): the start is published into it and never acknowledged.
    proxy.stall()
    await submitFresh(gateway.url)
    const lost = await waitFor(() => {
      const r = gateway.power.view().requests[0]
      return r && r.outcome !== 'pending' ? r : null
    })
    expect(lost).toMatchObject({
      action: 'start',
      outcome: 'failed',
      detail: 'mqtt: not acknowledged in time (withdrawn)',
    })
    // The link is cut and comes back; then an admin asks by hand. Messages on one connection
    // arrive in order, so an old start re-sent on reconnect would reach the agent before it.
    const cutAt = Date.now()
    proxy.cut()
    await waitFor(
      async () => {
        const { body } = await requestJson(`${gateway.url}/api/heygem/health`)
        const link = z.object({ mqtt: z.object({ state: z.string(), since: z.string() }) })
        const { mqtt: now } = link.parse(body)
        return proxy.accepted() >= 2 && now.state === 'connected' && Date.parse(now.since) >= cutAt
      },
      { what: 'gateway back on the broker' },
    )
    const manual = gateway.power.request('gpu-1', 'stop')
    await waitFor(() => (received.length > 0 ? received : null), { what: 'the manual request' })
    expect(received.map((m) => m.requestId)).toEqual([manual.id])
    const [got] = received
    expect(got?.expiresAt).toBe(new Date(Date.parse(got?.at ?? '') + 1_000).toISOString())
  })

  it('POSTs the request as JSON to POWER_ON_URL and records the status only', async () => {
    const dir = await tempDir('power-url')
    const hook = await recordingServer(202)
    const gateway = await startPoweredGateway(dir, {
      signals: powerSignals(dir),
      power: { onCommand: null, onUrl: hook.url },
    })
    await submitFresh(gateway.url)
    const [call] = await waitFor(() => (hook.calls.length > 0 ? hook.calls : null), {
      what: 'POST',
    })
    const request = await waitFor(() => {
      const r = gateway.power.view().requests[0]
      return r && r.outcome !== 'pending' ? r : null
    })
    expect(call).toMatchObject({
      method: 'POST',
      type: 'application/json',
      body: { gpu_id: 'gpu-1', action: 'start', reason: 'queued', request_id: request.id },
    })
    expect(request).toMatchObject({
      channel: 'url,mqtt',
      outcome: 'ok',
      detail: 'url: HTTP 202; mqtt: published',
    })
  })

  it('admins read the power view and ask for power by hand over HTTP; nobody else may', async () => {
    const dir = await tempDir('power-http')
    const signals = powerSignals(dir)
    const gateway = await startPoweredGateway(dir, {
      signals,
      power: { auto: false },
      config: { adminToken: ADMIN_TOKEN },
    })
    const url = `${gateway.url}/api/relay/power`
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
    const made = await requestJson(url, {
      headers: auth,
      body: { gpu_id: 'gpu-1', action: 'start' },
    })
    expect(made).toMatchObject({
      status: 200,
      body: { data: { request: { gpu_id: 'gpu-1', action: 'start', reason: 'manual' } } },
    })
    await signals.waitFor('start')
    const view = await requestJson(url, { headers: auth })
    expect(view).toMatchObject({
      status: 200,
      body: {
        data: { gpus: [{ gpu_id: 'gpu-1', state: 'booting' }], requests: [{ reason: 'manual' }] },
      },
    })
    const unknown = await requestJson(url, {
      headers: auth,
      body: { gpu_id: 'gpu-9', action: 'stop' },
    })
    expect(unknown).toMatchObject({ status: 404, body: { data: { error: 'GPU_NOT_FOUND' } } })
    const bad = await requestJson(url, {
      headers: auth,
      body: { gpu_id: 'gpu-1', action: 'reboot' },
    })
    expect(bad).toMatchObject({ status: 400, body: { data: { error: 'VALIDATION_FAILED' } } })
    const anonymous = await requestJson(url)
    expect(anonymous.status).toBe(403)
    expect((await signals.read()).filter((s) => s.action === 'start')).toHaveLength(1)
  })
})
