/**
 * A wrong MQTT secret against an external broker: the gateway and the bridge log a refused login
 * (not "unreachable"), keep retrying with backoff (mqtt.js alone stops after a CONNACK refusal),
 * health shows the gateway's link as refused, and both connect once the broker has the right
 * secrets. Against a real Mosquitto and against the embedded broker run on its own.
 */
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { gatewayTestConfig } from '../../gateway/config.js'
import { startGateway } from '../../gateway/gateway.js'
import { startBridge } from '../../gpu-bridge/bridge.js'
import { bridgeTestConfig } from '../../gpu-bridge/config.js'
import type { Credentials } from '../../lib/credentials.js'
import { requestJson } from '../../lib/http-client.js'
import { mosquittoMissing, startTestMosquitto } from '../helpers/mosquitto.js'
import { TEST_CREDENTIALS, TEST_SECRETS, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/** The broker's logins before the fix: every secret differs from what the relay presents. */
const WRONG: Credentials = {
  gateway: 'not-the-gateway-secret',
  admin: TEST_SECRETS.admin,
  gpus: { 'gpu-1': 'not-the-gpu-1-secret' },
}

/** A logger keeping its JSON lines. */
function capturedLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      }
      done()
    },
  })
  return { log: pino({ level: 'debug' }, stream), lines }
}

interface ExternalBroker {
  readonly url: string
  /** Start again on the same port with these logins. */
  restart(credentials: Credentials): Promise<void>
}

async function embeddedBroker(dir: string, credentials: Credentials): Promise<ExternalBroker> {
  const start = (port: number, creds: Credentials) =>
    startBroker(
      {
        host: '127.0.0.1',
        port,
        wsPort: null,
        persistencePath: join(dir, 'broker.sqlite'),
        tls: null,
        auth: {
          credentials: creds,
          allowAnonymous: false,
          topicRoot: 'relay',
          maxPayloadBytes: 256 * 1024,
          gatewayClientId: 'gpu-relay-gateway',
        },
      },
      { log: pino({ level: 'silent' }) },
    )
  let broker = await start(0, credentials)
  onTestFinished(() => broker.close())
  const port = Number(new URL(broker.url).port)
  return {
    url: broker.url,
    async restart(creds) {
      await broker.close()
      broker = await start(port, creds)
    },
  }
}

const refusedBy = (lines: Record<string, unknown>[], client: string) =>
  lines.filter((l) => l.msg === 'MQTT login refused by the broker' && l.client === client)

async function mqttHealth(url: string): Promise<Record<string, unknown> | undefined> {
  const reply = await requestJson(`${url}/api/heygem/health`)
  const body = reply.body as { mqtt?: Record<string, unknown> }
  return body.mqtt
}

describe.each([
  ['Mosquitto', 'mosquitto'],
  ['the embedded broker run on its own', 'embedded'],
] as const)('a refused MQTT login against %s', (_name, kind) => {
  it.skipIf(kind === 'mosquitto' && mosquittoMissing() !== null)(
    'is logged as refused, retried with backoff, shown by health, and connects once the secret is fixed',
    async () => {
      const dir = await tempDir(`refused-${kind}`)
      const broker: ExternalBroker =
        kind === 'mosquitto'
          ? await startTestMosquitto({ dir, credentials: WRONG })
          : await embeddedBroker(dir, WRONG)
      const { log, lines } = capturedLog()
      const gateway = await startGateway(
        gatewayTestConfig(join(dir, 'gateway'), {
          mqttUrl: broker.url,
          credentials: TEST_CREDENTIALS,
          mqttAllowAnonymous: false,
        }),
        { log },
      )
      onTestFinished(() => gateway.close())
      const gpu = await startTestGpu(dir, 100)
      const bridge = await startBridge(
        bridgeTestConfig({
          gpuId: 'gpu-1',
          mqttUrl: broker.url,
          gatewayUrl: gateway.url,
          serviceUrl: gpu.url,
          dataDir: join(dir, 'bridge'),
          secret: TEST_SECRETS.gpu,
        }),
        { log },
      )
      onTestFinished(() => bridge.close())

      // Refused more than once: mqtt.js alone would have stopped after the first.
      await waitFor(
        () => refusedBy(lines, 'gateway').length >= 2 && refusedBy(lines, 'bridge').length >= 2,
        {
          what: 'two refused logins on each side',
          timeoutMs: 15_000,
        },
      )
      const first = refusedBy(lines, 'gateway')[0]
      expect([4, 5]).toContain(first?.returnCode)
      const waits = refusedBy(lines, 'gateway').map((l) => Number(l.retryInMs))
      expect(waits[1]).toBeGreaterThan(Number(waits[0])) // backing off
      expect(lines.some((l) => l.msg === 'MQTT broker unreachable; retrying')).toBe(false)
      const refused = await mqttHealth(gateway.url)
      expect(refused).toMatchObject({ state: 'refused' })
      expect(Number.isNaN(Date.parse(String(refused?.since)))).toBe(false)
      expect(bridge.isConnected()).toBe(false)

      await broker.restart(TEST_CREDENTIALS)
      await waitFor(async () => (await mqttHealth(gateway.url))?.state === 'connected', {
        what: 'the gateway connected with the fixed secret',
        timeoutMs: 20_000,
      })
      await waitFor(() => bridge.isConnected(), {
        what: 'the bridge connected with the fixed secret',
        timeoutMs: 20_000,
      })
    },
    60_000,
  )
})
