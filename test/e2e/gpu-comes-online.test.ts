import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { gpuPresence } from '../helpers/gateway-view.js'
import { download, media, submitTask, taskStatus, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('tasks queued while the GPU is off', () => {
  it('run automatically once the bridge starts: one at a time, in submit order, each exactly once, each PC gets its own result', async () => {
    const dir = await tempDir('comes-online')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 300)

    const video = await upload(gateway.url, media('avatar', 'video'), '.mp4')
    const submitted: { taskId: string; key: string; audio: string }[] = []
    for (let i = 0; i < 5; i++) {
      const key = i % 2 === 0 ? 'PC-ALICE' : 'PC-BOB'
      const audio = await upload(gateway.url, media(`speech-${i}`, 'audio'), '.wav')
      const env = await submitTask(gateway.url, { audio, video, licenseKey: key })
      expect(env.data.status).toBe('queued')
      submitted.push({ taskId: String(env.data.task_id), key, audio })
    }
    expect(gpu.stats.submissions).toHaveLength(0)

    await startTestBridge(dir, { gateway, gpu })
    await waitFor(
      async () => {
        const all = await Promise.all(submitted.map((t) => taskStatus(gateway.url, t.taskId)))
        return all.every((s) => s.status === 'done')
      },
      { what: 'all five tasks done', timeoutMs: 30_000, intervalMs: 100 },
    )

    // each exactly once, in submit order, never two at a time
    expect(gpu.stats.submissions.map((s) => s.audioHash)).toEqual(submitted.map((t) => t.audio))
    expect(gpu.stats.completed).toHaveLength(5)
    expect(gpu.stats.maxConcurrent).toBe(1)
    // new inputs, the GPU off at submit: every task ran on its first attempt
    expect(submitted.map((t) => gateway.store.get(t.taskId)?.attempt)).toEqual([1, 1, 1, 1, 1])
    // the avatar video travelled once
    expect(gpu.stats.uploads.filter((u) => u.hash === video)).toHaveLength(1)
    // every PC downloads the result made from its own inputs
    for (const task of submitted) {
      const result = await download(gateway.url, task.taskId)
      expect(result.bytes.equals(fakeResultBytes(task.audio, video, 32 * 1024))).toBe(true)
    }
  })

  it.each([
    ['the broker keeps its sessions on disk (default)', true],
    ['the broker keeps sessions in memory, so the birth reconcile re-publishes', false],
  ])('survive a gateway restart and run when the GPU connects: %s', async (_name, onDisk) => {
    const dir = await tempDir('gateway-restart')
    const persistencePath = onDisk ? join(dir, 'gateway', 'broker.sqlite') : null
    const first = await startTestGateway(dir, {
      broker: { host: '127.0.0.1', port: 0, wsPort: null, persistencePath, tls: null },
    })
    const gpu = await startTestGpu(dir, 200)
    // The GPU has been here before, so the broker holds its session when the tasks are published.
    const bridge = await startTestBridge(dir, { gateway: first, gpu })
    await waitFor(async () => (await gpuPresence(first.url)).online, { what: 'GPU online' })
    await bridge.close()
    await waitFor(async () => !(await gpuPresence(first.url)).online, { what: 'GPU offline' })

    const video = await upload(first.url, media('avatar', 'video'), '.mp4')
    const tasks: { id: string; audio: string }[] = []
    for (let i = 0; i < 3; i++) {
      const audio = await upload(first.url, media(`line-${i}`, 'audio'), '.wav')
      const env = await submitTask(first.url, { audio, video, licenseKey: 'PC-1' })
      tasks.push({ id: String(env.data.task_id), audio })
    }
    // Restart on the same ports.
    const httpPort = Number(new URL(first.url).port)
    const mqttPort = Number(new URL(first.mqttUrl).port)
    await first.close()
    const second = await startTestGateway(dir, {
      port: httpPort,
      broker: { host: '127.0.0.1', port: mqttPort, wsPort: null, persistencePath, tls: null },
    })
    for (const task of tasks) {
      expect((await taskStatus(second.url, task.id)).status).toBe('queued')
    }

    await startTestBridge(dir, { gateway: second, gpu })
    await waitFor(
      async () => {
        const all = await Promise.all(tasks.map((t) => taskStatus(second.url, t.id)))
        return all.every((s) => s.status === 'done')
      },
      { what: 'queued tasks done after the restart', timeoutMs: 30_000, intervalMs: 100 },
    )
    expect(gpu.stats.submissions.map((s) => s.audioHash)).toEqual(tasks.map((t) => t.audio))
  })
})
