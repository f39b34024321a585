/**
 * Faults injected for real: processes killed with SIGKILL, connections cut, the GPU service
 * restarted. Each ends with every task in its one right state and no GPU job run twice.
 */
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { publish } from '../../lib/mqtt.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { freePort, startChildBridge, startChildGateway } from '../helpers/child-process.js'
import { download, media, submitFresh, submitTask, taskStatus, upload } from '../helpers/pc.js'
import {
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

async function allDone(url: string, ids: readonly string[], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      const all = await Promise.all(ids.map((id) => taskStatus(url, id)))
      return all.every((s) => s.status === 'done')
    },
    { what: 'every task done', timeoutMs, intervalMs: 100 },
  )
}

describe('crash and fault recovery', () => {
  it('gateway killed with SIGKILL while tasks are queued, running and finishing: all finish once, and a result sent while it was down is kept', async () => {
    const dir = await tempDir('kill-gateway')
    const ports = { http: await freePort(), mqtt: await freePort() }
    const dataDir = join(dir, 'gateway')
    let gateway = await startChildGateway(dataDir, ports)
    const gpu = await startTestGpu(dir, 1_200)
    await startTestBridge(dir, { gateway, gpu })

    const video = await upload(gateway.url, media('avatar', 'video'), '.mp4')
    const tasks: { id: string; audio: string }[] = []
    for (let i = 0; i < 4; i++) {
      const audio = await upload(gateway.url, media(`line-${String(i)}`, 'audio'), '.wav')
      tasks.push({
        id: String((await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id),
        audio,
      })
    }
    const first = tasks[0]?.id ?? ''
    await waitFor(async () => Number((await taskStatus(gateway.url, first)).progress) >= 50, {
      what: 'the first task half-way',
      timeoutMs: 15_000,
    })
    await gateway.child.kill9()
    // The GPU finishes the first job while the gateway is dead: the bridge keeps the result.
    await waitFor(() => gpu.stats.completed.length >= 1, {
      what: 'the GPU finishing',
      timeoutMs: 15_000,
    })

    gateway = await startChildGateway(dataDir, ports)
    await allDone(
      gateway.url,
      tasks.map((t) => t.id),
    )
    expect(gpu.stats.submissions.map((s) => s.audioHash)).toEqual(tasks.map((t) => t.audio))
    for (const task of tasks) {
      const result = await download(gateway.url, task.id)
      expect(result.bytes.equals(fakeResultBytes(task.audio, video, 32 * 1024))).toBe(true)
    }
  })

  it('bridge killed with SIGKILL mid-task while the GPU keeps running: the restarted bridge follows the same job to done, no second run', async () => {
    const dir = await tempDir('kill-bridge')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 3_000)
    const bridgeEnv = {
      MQTT_URL: gateway.mqttUrl,
      GATEWAY_URL: gateway.url,
      GPU_SERVICE_URL: gpu.url,
      BRIDGE_DATA_DIR: join(dir, 'bridge'),
    }
    const bridge = await startChildBridge(bridgeEnv)
    const id = await submitFresh(gateway.url)
    await waitFor(async () => Number((await taskStatus(gateway.url, id)).progress) > 15, {
      what: 'the job under way',
      timeoutMs: 15_000,
    })
    await bridge.kill9()
    await startChildBridge(bridgeEnv)
    await allDone(gateway.url, [id])
    expect(gpu.stats.submissions).toHaveLength(1)
    expect(gateway.store.get(id)?.attempt).toBe(1)
  })

  it('connection between bridge and broker cut and restored during a job: the job continues, progress resumes, one result', async () => {
    const dir = await tempDir('cut-link')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 2_500)
    const proxy = await startTcpProxy(Number(new URL(gateway.mqttUrl).port))
    onTestFinished(() => proxy.close())
    await startTestBridge(dir, { gateway: { url: gateway.url, mqttUrl: proxy.url('mqtt') }, gpu })
    const id = await submitFresh(gateway.url)
    await waitFor(async () => Number((await taskStatus(gateway.url, id)).progress) > 10, {
      what: 'under way',
    })
    proxy.setRefusing(true)
    proxy.cut()
    const before = Number((await taskStatus(gateway.url, id)).progress)
    proxy.setRefusing(false)
    await waitFor(async () => Number((await taskStatus(gateway.url, id)).progress) > before, {
      what: 'progress after the cut',
      timeoutMs: 15_000,
    })
    await allDone(gateway.url, [id])
    expect(gpu.stats.submissions).toHaveLength(1)
    expect(gateway.store.get(id)?.attempt).toBe(1)
    expect(proxy.accepted()).toBeGreaterThan(1)
  })

  it('GPU service restarted mid-task every time: retried up to the configured attempts, then error with a clear message', async () => {
    const dir = await tempDir('gpu-restarts')
    const gateway = await startTestGateway(dir, { maxAttempts: 2 })
    const gpu = await startTestGpu(dir, 2_000)
    await startTestBridge(dir, { gateway, gpu })
    const id = await submitFresh(gateway.url)
    for (let n = 1; n <= 2; n++) {
      await waitFor(() => gpu.stats.submissions.length === n, { what: `submission ${String(n)}` })
      await gpu.restart()
    }
    const final = await waitFor(
      async () => {
        const s = await taskStatus(gateway.url, id)
        return s.status === 'error' ? s : null
      },
      { what: 'error after the last attempt', timeoutMs: 15_000 },
    )
    expect(String(final.error_msg)).toContain('GPU 服务丢失了该任务')
    expect(String(final.error_msg)).toContain('已重试 2 次')
    expect(gpu.stats.submissions).toHaveLength(2)
  })

  it('a stale message from an earlier attempt delivered again does not run', async () => {
    const dir = await tempDir('stale-attempt')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 800)
    const spy = await testMqttClient(gateway.mqttUrl, 'gateway')
    const messages: Buffer[] = []
    spy.on('message', (topic, payload) => {
      if (topic.endsWith('/tasks') || topic.startsWith('relay/offers/')) messages.push(payload)
    })
    // Offers go to every GPU of the type; one bridge may also be sent a task on its own topic.
    await spy.subscribeAsync(['relay/offers/heygem', 'relay/gpus/gpu-1/tasks'], { qos: 1 })
    await startTestBridge(dir, { gateway, gpu })
    const id = await submitFresh(gateway.url)
    await waitFor(() => gpu.stats.submissions.length === 1, { what: 'attempt 1 on the GPU' })
    await gpu.restart() // attempt 1 is lost: attempt 2 follows
    await allDone(gateway.url, [id])
    const attempt1 = messages.find((m) => m.toString().includes('"attempt":1'))
    expect(attempt1).toBeDefined()
    const refused = new Promise<void>((resolve) => {
      spy.on('message', (topic, payload) => {
        if (topic.endsWith('/control') && payload.toString().includes('stale-attempt')) resolve()
      })
    })
    await spy.subscribeAsync('relay/gpus/gpu-1/control', { qos: 1 })
    await publish(spy, {
      topic: 'relay/offers/heygem',
      payload: attempt1 ?? Buffer.alloc(0),
      qos: 1,
    })
    await refused
    expect(gpu.stats.submissions).toHaveLength(2)
    expect((await taskStatus(gateway.url, id)).status).toBe('done')
  })
})
