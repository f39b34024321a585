/**
 * A whole relay for the pipeline benches: the real gateway (embedded broker, SQLite in a temp
 * folder), the fake run_server behind a tiny HTTP proxy that notes when each submit arrives, and
 * the real bridge. `close` stops everything and removes the folder.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBroker } from '../broker/broker.js'
import { gatewayTestConfig } from '../gateway/config.js'
import { startGateway } from '../gateway/gateway.js'
import { bridgeTestConfig } from '../gpu-bridge/config.js'
import { startBridge } from '../gpu-bridge/bridge.js'
import { silentLogger } from '../lib/logger.js'
import { startFakeRunServer } from '../test/fakes/run-server.js'
import { TEST_CREDENTIALS, TEST_SECRETS } from '../test/helpers/relay.js'

const log = silentLogger()

export interface BenchRelay {
  readonly url: string
  /** performance.now() at each POST /api/heygem/submit reaching the GPU service, in order. */
  readonly submits: number[]
  /** Starts the bridge (once): performance.now() just before it starts. */
  startBridge(): Promise<number>
  close(): Promise<void>
}

/** A proxy in front of `target` that records the arrival time of each submit. */
async function submitSpy(target: string, submits: number[]): Promise<Server> {
  const to = new URL(target)
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/api/heygem/submit') === true) {
      submits.push(performance.now())
    }
    const up = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      },
    )
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

export async function startBenchRelay(durationMs: number): Promise<BenchRelay> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-pipeline-'))
  const stops: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })]
  const close = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop()
  }
  try {
    const submits: number[] = []
    const gpu = await startFakeRunServer({
      dir: join(dir, 'gpu-service'),
      durationMs,
      resultSize: 1024,
    })
    stops.push(() => gpu.close())
    const spy = await submitSpy(gpu.url, submits)
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          spy.closeAllConnections()
          spy.close(() => {
            resolve()
          })
        }),
    )
    const spyUrl = `http://127.0.0.1:${String((spy.address() as AddressInfo).port)}`
    const gateway = await startGateway(
      gatewayTestConfig(join(dir, 'gateway'), {
        credentials: TEST_CREDENTIALS,
        mqttAllowAnonymous: false,
      }),
      { log, startBroker },
    )
    stops.push(() => gateway.close())
    const bridgeAt = async (): Promise<number> => {
      const t0 = performance.now()
      const bridge = await startBridge(
        bridgeTestConfig({
          gpuId: 'gpu-1',
          mqttUrl: gateway.mqttUrl,
          gatewayUrl: gateway.url,
          serviceUrl: spyUrl,
          dataDir: join(dir, 'bridge'),
          secret: TEST_SECRETS.gpu,
        }),
        { log },
      )
      stops.push(() => bridge.close())
      return t0
    }
    return { url: gateway.url, submits, startBridge: bridgeAt, close }
  } catch (err) {
    await close()
    throw err
  }
}
