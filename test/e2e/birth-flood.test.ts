import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { endClient, publish } from '../../lib/mqtt.js'
import {
  PROTOCOL_VERSION,
  bridgeClientId,
  encodePayload,
  parsePayload,
  TaskMessage,
  topicsFor,
  type GpuState,
} from '../../protocol/index.js'
import { gpuPresence } from '../helpers/gateway-view.js'
import { media, submitTask, upload } from '../helpers/pc.js'
import { TEST_SECRETS, startTestGateway, testMqttClient } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const topics = topicsFor()

describe('a flood of births from one GPU', () => {
  it('re-publishes the backlog about once, not once a birth', async () => {
    const dir = await tempDir('birth-flood')
    const gateway = await startTestGateway(dir)
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const queued = 30
    for (let i = 0; i < queued; i++)
      await submitTask(gateway.url, { audio, video, licenseKey: 'K' })

    const admin = await testMqttClient(gateway.mqttUrl, 'admin')
    const seen: string[] = []
    admin.on('message', (topic, payload) => {
      const task = parsePayload(TaskMessage, payload)
      if (topic === topics.gpuTasks('gpu-1') && task.ok) seen.push(task.value.taskId)
    })
    await admin.subscribeAsync(topics.gpuTasks('gpu-1'), { qos: 1 })

    // A GPU login that announces a new connection over and over, holding nothing.
    const gpu = await mqtt.connectAsync(gateway.mqttUrl, {
      clientId: bridgeClientId('gpu-1'),
      username: 'gpu-1',
      password: TEST_SECRETS.gpu,
      clean: false,
    })
    onTestFinished(() => endClient(gpu))
    const births = 50
    const first = Date.now()
    for (let i = 0; i < births; i++) {
      const birth: GpuState = {
        v: PROTOCOL_VERSION,
        online: true,
        epoch: first + i,
        heartbeatMs: 60_000,
        reason: 'birth',
        holding: [],
      }
      await publish(gpu, {
        topic: topics.gpuState('gpu-1'),
        payload: encodePayload(birth),
        qos: 1,
        retain: true,
      })
    }
    // Every birth has been handled once the gateway shows the last epoch; a task submitted after
    // that is published after every re-publish of theirs (one publisher, one topic: in order).
    await waitFor(async () => (await gpuPresence(gateway.url)).epoch === first + births - 1, {
      what: 'the last birth seen',
    })
    const marker = String(
      (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
    )
    await waitFor(() => seen.includes(marker), { what: 'the task submitted after the flood' })
    seen.splice(seen.indexOf(marker), 1)
    expect(new Set(seen).size).toBe(queued)
    // About one backlog: a second one only if the flood outlasted the re-publish interval.
    expect(seen.length).toBeLessThanOrEqual(2 * queued)
    // What the flood skipped is published once more when the interval is over (the broker may
    // have lost the first copy meanwhile): each task twice in all, and no more.
    await waitFor(() => seen.length === 2 * queued, {
      what: 'the skipped re-publish after the interval',
      timeoutMs: 15_000,
    })
    for (const id of new Set(seen)) expect(seen.filter((s) => s === id)).toHaveLength(2)
  })
})
