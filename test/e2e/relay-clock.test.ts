import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { media, submitTask, taskStatus, upload } from '../helpers/pc.js'
import { bridgeTestConfig } from '../../gpu-bridge/config.js'
import { startBridge } from '../../gpu-bridge/bridge.js'
import {
  TEST_SECRETS,
  log,
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** Upload fresh inputs and submit `n` tasks, in order: their ids. */
async function submitMany(url: string, n: number, label: string): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const audio = await upload(url, media(`${label}-a${String(i)}`, 'audio'), '.wav')
    const video = await upload(url, media(`${label}-v${String(i)}`, 'video'), '.mp4')
    ids.push(String((await submitTask(url, { audio, video, licenseKey: 'K' })).data.task_id))
  }
  return ids
}

describe('the relay clock: durations that no wall-clock step and no gateway downtime move', () => {
  it('steps the wall clock +31 min, +25 h and -1 day while tasks are queued and running: nothing expires, re-runs or fails', async () => {
    const dir = await tempDir('clock-steps')
    let offset = 0
    // The defaults that matter: queue TTL 24 h, execution timeout 30 min, stall timeout 10 min.
    const gateway = await startTestGateway(dir, {}, () => Date.now() + offset)
    const gpu = await startTestGpu(dir, 2_000)
    await startTestBridge(dir, { gateway, gpu })
    const ids = await submitMany(gateway.url, 3, 'steps')
    const [first, second, third] = ids
    if (first === undefined || second === undefined || third === undefined) throw new Error('ids')

    const state = (id: string): string | undefined => gateway.store.get(id)?.state
    // Each step is followed by two gateway ticks (transitions of a later task prove them) or by
    // the job's own progress on the relay's timeline.
    const progressOf = (id: string): number => gateway.store.get(id)?.progress ?? 0
    await waitFor(() => state(first) === 'processing' && progressOf(first) > 0, {
      what: 'the first task running',
    })
    offset = 31 * MINUTE
    const before = progressOf(first)
    await waitFor(() => progressOf(first) > before + 10 || state(first) === 'done', {
      what: 'the first task going on after +31 min',
    })
    offset = 25 * HOUR
    await waitFor(() => state(second) === 'processing' && progressOf(second) > 0, {
      what: 'the second task running after +25 h',
      timeoutMs: 15_000,
    })
    offset = -DAY
    await waitFor(() => ids.every((id) => state(id) === 'done'), {
      what: 'all three done after -1 day',
      timeoutMs: 20_000,
    })

    for (const id of ids) {
      const row = gateway.store.get(id)
      expect(row).toMatchObject({ state: 'done', attempt: 1 })
      const moves = gateway.outbox
        .ofTask(id)
        .filter((e) => e.kind !== 'progress' && e.kind !== 'result-stored')
        .map((e) => `${e.state ?? ''}:${e.kind}`)
      expect(moves).toEqual(['queued:submitted', 'processing:claimed', 'done:done'])
    }
    expect(gpu.stats.submissions).toHaveLength(3)
    expect((await taskStatus(gateway.url, third)).status).toBe('done')
  }, 60_000)

  it('does not count its own downtime against a running job: a job that finished while the gateway was down longer than the execution timeout is taken from the bridge, not run again', async () => {
    const dir = await tempDir('clock-outage')
    const execTimeoutMs = 8_000
    const first = await startTestGateway(dir, { execTimeoutMs })
    const port = Number(new URL(first.url).port)
    const mqttPort = Number(new URL(first.mqttUrl).port)
    // The bridge reaches the gateway's HTTP side through a proxy, so the hand-over can be held
    // back after the restart until the gateway's clocks have ticked a few times.
    const http = await startTcpProxy(port)
    onTestFinished(() => http.close())
    const gpu = await startTestGpu(dir, 1_000)
    const bridge = await startTestBridge(dir, {
      gateway: { url: http.url('http'), mqttUrl: first.mqttUrl },
      gpu,
    })
    const [id] = await submitMany(first.url, 1, 'outage')
    if (id === undefined) throw new Error('no id')
    const claimedAt = Date.now()
    await waitFor(() => first.store.get(id)?.state === 'processing', { what: 'claimed' })
    await waitFor(() => gpu.stats.submissions.length === 1, { what: 'the job on the GPU' })

    http.setRefusing(true)
    await first.close()
    // Down for longer than the execution timeout, while the job finishes on the GPU.
    await waitFor(
      () => gpu.stats.completed.length === 1 && Date.now() - claimedAt > execTimeoutMs + 1_500,
      {
        what: 'the job done on the GPU and the outage past the execution timeout',
        timeoutMs: 15_000,
      },
    )
    const second = await startTestGateway(dir, {
      execTimeoutMs,
      port,
      broker: {
        host: '127.0.0.1',
        port: mqttPort,
        wsPort: null,
        persistencePath: join(dir, 'gateway', 'broker.sqlite'),
        tls: null,
      },
    })
    // Two heartbeats of the reconnected bridge: the restarted gateway's clocks ran meanwhile.
    const watcher = await testMqttClient(second.mqttUrl, 'gateway')
    let beats = 0
    watcher.on('message', (_topic, payload) => {
      if (payload.toString().includes('"heartbeat"')) beats++
    })
    await watcher.subscribeAsync('relay/gpus/gpu-1/state', { qos: 1 })
    await waitFor(() => beats >= 2, { what: 'two heartbeats after the restart' })
    expect(second.store.get(id)).toMatchObject({ state: 'processing', attempt: 1 })
    http.setRefusing(false)

    await waitFor(() => second.store.get(id)?.state === 'done', {
      what: 'the result taken from the bridge after the restart',
      timeoutMs: 20_000,
    })
    expect(bridge.isConnected()).toBe(true)
    expect(second.store.get(id)).toMatchObject({ state: 'done', attempt: 1 })
    expect(gpu.stats.submissions).toHaveLength(1)
    const states = second.outbox
      .ofTask(id)
      .filter((e) => e.from !== e.state)
      .map((e) => e.state)
    expect(states).toEqual(['queued', 'processing', 'done'])
  }, 60_000)

  it('keeps a bridge whose clock steps back a day mid-job reporting progress: nothing stalls or runs twice', async () => {
    const dir = await tempDir('bridge-step')
    const gateway = await startTestGateway(dir, { stallTimeoutMs: 2_500, maxAttempts: 2 })
    const gpu = await startTestGpu(dir, 6_000)
    let offset = 0
    const bridge = await startBridge(
      bridgeTestConfig({
        gpuId: 'gpu-1',
        mqttUrl: gateway.mqttUrl,
        gatewayUrl: gateway.url,
        serviceUrl: gpu.url,
        dataDir: join(dir, 'bridge'),
        secret: TEST_SECRETS.gpu,
      }),
      { log, now: () => Date.now() + offset },
    )
    onTestFinished(() => bridge.close())
    const [id] = await submitMany(gateway.url, 1, 'bridge-step')
    if (id === undefined) throw new Error('no id')
    const progressOf = (): number => gateway.store.get(id)?.progress ?? 0
    await waitFor(() => progressOf() > 5, { what: 'the job reporting progress' })
    offset = -DAY
    const before = progressOf()
    await waitFor(() => progressOf() > before + 20 || gateway.store.get(id)?.state === 'done', {
      what: 'progress after the step back',
    })
    await waitFor(() => gateway.store.get(id)?.state === 'done', {
      what: 'done',
      timeoutMs: 20_000,
    })
    expect(gateway.store.get(id)).toMatchObject({ state: 'done', attempt: 1 })
    expect(gpu.stats.submissions).toHaveLength(1)
  }, 60_000)
})
