import { describe, expect, it } from 'vitest'
import { startBridge } from '../../gpu-bridge/bridge.js'
import { bridgeTestConfig } from '../../gpu-bridge/config.js'
import { gpuPresence } from '../helpers/gateway-view.js'
import { call, finalStatus, submitFresh } from '../helpers/pc.js'
import {
  TEST_SECRETS,
  log,
  startTestBridge,
  startTestGateway,
  startTestGpu,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/** The compatible progress data of a task, as the PC app reads it. */
async function progress(gatewayUrl: string, taskId: string): Promise<Record<string, unknown>> {
  const { env } = await call(gatewayUrl, `/api/heygem/progress?task_id=${taskId}`)
  return env.data
}

describe('a GPU service that is not ready yet', () => {
  it('makes the task wait, however long the models load, and then runs it on attempt 1', async () => {
    const dir = await tempDir('model-load')
    const gateway = await startTestGateway(dir)
    // The port stays closed three times longer than the bridge tolerates a service outage.
    const gpu = await startTestGpu(dir, 300, { loadMs: 3_000 })
    await startTestBridge(dir, { gateway, gpu }, { serviceDownMs: 1_000 })
    await waitFor(async () => (await gpuPresence(gateway.url)).online, { what: 'GPU online' })
    expect(await gpuPresence(gateway.url)).toMatchObject({ ready: false, service: 'down' })

    const taskId = await submitFresh(gateway.url)
    const waiting = await progress(gateway.url, taskId)
    // The PC app shows the message of a `processing` task: the relay says the GPU is starting.
    expect(waiting).toMatchObject({ status: 'processing', queue_position: 1, error: '' })
    expect(String(waiting.message)).toMatch(/GPU 服务器正在启动.*第1位.*预计约 \d+ (秒|分钟)后开始/)
    expect(gpu.stats.submissions).toHaveLength(0)

    await gpu.ready
    const done = await finalStatus(gateway.url, taskId, 20_000)
    expect(done.status).toBe('done')
    expect(gateway.store.get(taskId)?.attempt).toBe(1)
    expect(gpu.stats.submissions).toHaveLength(1)
    expect(await gpuPresence(gateway.url)).toMatchObject({ ready: true, service: 'ready' })
  })

  it('counts the estimate down across the GPU coming online while its service still loads', async () => {
    const dir = await tempDir('countdown')
    let skewMs = 0
    const gateway = await startTestGateway(dir, { bootEstimateS: 120 }, () => Date.now() + skewMs)
    const taskId = await submitFresh(gateway.url)
    const before = await progress(gateway.url, taskId)
    expect(String(before.message)).toMatch(/GPU 服务器未上线/)
    skewMs = 30_000 // half a minute of waiting, on the gateway's clock
    const gpu = await startTestGpu(dir, 200, { loadMs: 60_000 })
    await startTestBridge(dir, { gateway, gpu })
    await waitFor(async () => (await gpuPresence(gateway.url)).online, { what: 'GPU online' })
    const starting = await progress(gateway.url, taskId)
    expect(String(starting.message)).toMatch(/GPU 服务器正在启动/)
    // The same boot goes on: 30 s of it are gone, it did not start again at 120 s.
    expect(Number(starting.eta_seconds)).toBeLessThanOrEqual(Number(before.eta_seconds) - 29)
  })

  it('with a secret: sends it, and a wrong one spends no attempt until it is put right', async () => {
    const dir = await tempDir('service-secret')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 200, { apiSecret: 'gpu-service-secret' })
    const wrong = await startTestBridge(dir, { gateway, gpu }, { serviceSecret: 'not-the-secret' })
    await waitFor(async () => (await gpuPresence(gateway.url)).service === 'unauthorized', {
      what: 'the GPU reported as refusing our secret',
    })
    const taskId = await submitFresh(gateway.url)
    // The bridge goes on probing with its wrong secret (every 100 ms) and is refused each time;
    // meanwhile the task stays queued: nothing is claimed, no attempt is spent.
    const refused = gpu.stats.refused
    await waitFor(() => gpu.stats.refused >= refused + 5, { what: 'five more refused probes' })
    expect((await progress(gateway.url, taskId)).status).toBe('processing')
    expect(gateway.store.get(taskId)).toMatchObject({ state: 'queued', attempt: 1 })
    expect(gpu.stats.submissions).toHaveLength(0)
    await wrong.close()

    await startTestBridge(dir, { gateway, gpu }, { serviceSecret: 'gpu-service-secret' })
    const done = await finalStatus(gateway.url, taskId, 20_000)
    expect(done.status).toBe('done')
    expect(gateway.store.get(taskId)?.attempt).toBe(1)
    expect(gpu.stats.submissions).toHaveLength(1)
  })

  it("brings the engine's reason for a failed job to the PC as run_server's `error`", async () => {
    const dir = await tempDir('engine-reason')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 200)
    await startTestBridge(dir, { gateway, gpu })
    gpu.failNext('未检测到人脸，请更换视频')
    const taskId = await submitFresh(gateway.url)
    await finalStatus(gateway.url, taskId, 20_000)
    expect(await progress(gateway.url, taskId)).toMatchObject({
      status: 'error',
      progress: 0,
      error: '未检测到人脸，请更换视频',
      error_msg: '未检测到人脸，请更换视频',
    })
  })

  it('refuses to start a bridge whose GPU_SERVICE_URL is a relay gateway', async () => {
    const dir = await tempDir('relay-loop')
    const gateway = await startTestGateway(dir)
    const config = bridgeTestConfig({
      gpuId: 'gpu-1',
      mqttUrl: gateway.mqttUrl,
      gatewayUrl: gateway.url,
      serviceUrl: gateway.url,
      dataDir: `${dir}/bridge`,
      secret: TEST_SECRETS.gpu,
    })
    await expect(startBridge(config, { log })).rejects.toThrow(/gpu-relay gateway.*relay: true/)
  })
})
