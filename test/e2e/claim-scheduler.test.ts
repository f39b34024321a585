/**
 * The claim is the scheduler (docs/design.md §3.2), seen from GPUs that speak MQTT by hand: a
 * GPU gets the oldest queued task of its types and nothing else (`not-next`, and the older one is
 * sent to it), no more than its capacity (`at-capacity`), only tasks of a type it runs
 * (`not-eligible`), and not a task another GPU took (`not-queued`). Births that say their session
 * is new are sent what they lack; every GPU that runs a type is offered its new tasks.
 */
import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { endClient, publish } from '../../lib/mqtt.js'
import {
  ControlMessage,
  PROTOCOL_VERSION,
  TaskMessage,
  bridgeClientId,
  encodePayload,
  parsePayload,
  topicsFor,
  type GpuState,
  type TaskType,
} from '../../protocol/index.js'
import { gpuPresence } from '../helpers/gateway-view.js'
import { submitFresh } from '../helpers/pc.js'
import { TEST_CREDENTIALS, TEST_SECRETS, startTestGateway } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const topics = topicsFor()
const GPU_2_SECRET = 'test-gpu-2-secret'

async function rawGpu(gateway: { url: string; mqttUrl: string }, gpuId: string, secret: string) {
  const client = await mqtt.connectAsync(gateway.mqttUrl, {
    clientId: bridgeClientId(gpuId),
    username: gpuId,
    password: secret,
    clean: false,
  })
  onTestFinished(() => endClient(client))
  const sent: string[] = []
  const offered: string[] = []
  const control: ControlMessage[] = []
  client.on('message', (topic, payload) => {
    const task = parsePayload(TaskMessage, payload)
    if (task.ok && topic === topics.gpuTasks(gpuId)) sent.push(task.value.taskId)
    if (task.ok && topics.parseOffersTopic(topic) !== null) offered.push(task.value.taskId)
    const message = parsePayload(ControlMessage, payload)
    if (message.ok && topic === topics.gpuControl(gpuId)) control.push(message.value)
  })
  await client.subscribeAsync(
    [topics.gpuTasks(gpuId), topics.gpuControl(gpuId), topics.offers('heygem')],
    { qos: 1 },
  )
  let epoch = Date.now()
  let seq = 0
  return {
    sent,
    offered,
    control,
    async birth(o: {
      session: 'new' | 'resumed'
      types: TaskType[]
      capacity: number
      holding?: GpuState['holding']
    }) {
      epoch++
      const state: GpuState = {
        v: PROTOCOL_VERSION,
        online: true,
        epoch,
        heartbeatMs: 60_000,
        reason: 'birth',
        ready: true,
        ...o,
        holding: o.holding ?? [],
      }
      await publish(client, {
        topic: topics.gpuState(gpuId),
        payload: encodePayload(state),
        qos: 1,
        retain: true,
      })
      await waitFor(async () => (await gpuPresence(gateway.url, gpuId)).epoch === epoch, {
        what: `${gpuId} birth seen`,
      })
    },
    /** Claim attempt 1 of `taskId`; the gateway's answer: `granted` or the refusal's reason. */
    async claim(taskId: string): Promise<string> {
      const from = control.length
      seq++
      const event = { v: PROTOCOL_VERSION, kind: 'claim', taskId, attempt: 1, seq, epoch }
      await publish(client, {
        topic: topics.gpuEvents(gpuId),
        payload: encodePayload(event),
        qos: 1,
      })
      return waitFor(
        () => {
          for (const m of control.slice(from)) {
            if (m.kind === 'claim-granted' && m.taskId === taskId) return 'granted'
            if (m.kind === 'claim-refused' && m.taskId === taskId) return m.reason
          }
          return null
        },
        { what: `the answer to ${gpuId}'s claim` },
      )
    },
  }
}

describe('the claim is the scheduler', () => {
  it('grants the oldest task of its types to a ready GPU with a free slot, and refuses the rest with the reason', async () => {
    const dir = await tempDir('claim-scheduler')
    const gateway = await startTestGateway(dir, {
      credentials: {
        ...TEST_CREDENTIALS,
        gpus: { ...TEST_CREDENTIALS.gpus, 'gpu-2': GPU_2_SECRET },
      },
    })
    const t1 = await submitFresh(gateway.url)
    const t2 = await submitFresh(gateway.url)
    const t3 = await submitFresh(gateway.url)

    const one = await rawGpu(gateway, 'gpu-1', TEST_SECRETS.gpu)
    await one.birth({ session: 'resumed', types: ['heygem'], capacity: 2 })
    // Out of order: refused, and the older task is sent to it.
    expect(await one.claim(t2)).toBe('not-next')
    await waitFor(() => one.sent.includes(t1), { what: 'the older task sent to gpu-1' })
    expect(await one.claim(t1)).toBe('granted')
    expect(await one.claim(t2)).toBe('granted')
    expect(await one.claim(t3)).toBe('at-capacity') // capacity 2, both slots busy

    const two = await rawGpu(gateway, 'gpu-2', GPU_2_SECRET)
    await two.birth({ session: 'new', types: ['tts'], capacity: 1 })
    expect(await two.claim(t3)).toBe('not-eligible') // a type it does not run
    // Born again running heygem, with a new session, holding t1 (which gpu-1 runs): sent the
    // queued task it lacks, and told to drop the one that is not its to run.
    const held = [{ taskId: t1, attempt: 1, phase: 'received' as const }]
    await two.birth({ session: 'new', types: ['heygem'], capacity: 1, holding: held })
    await waitFor(() => two.sent.includes(t3), { what: 'the backlog sent to gpu-2 at birth' })
    await waitFor(() => two.control.some((c) => c.kind === 'cancel' && c.taskId === t1), {
      what: 'gpu-2 told to drop the task gpu-1 runs',
    })
    expect(two.sent).not.toContain(t1) // running on gpu-1: not offered to anyone
    expect(await two.claim(t1)).toBe('not-queued') // gpu-1 took it
    expect(await two.claim(t3)).toBe('granted')
    expect(gateway.store.get(t3)).toMatchObject({ state: 'processing', gpu_id: 'gpu-2' })

    // A new task is offered to every GPU that runs its type, on the offer topic.
    const t4 = await submitFresh(gateway.url)
    await waitFor(() => one.offered.includes(t4) && two.offered.includes(t4), {
      what: 'the new task offered to both GPUs',
    })
    expect(gateway.store.get(t4)).toMatchObject({ state: 'queued', gpu_id: null })
  })

  it('sends an idle GPU that claims nothing the oldest queued tasks of its types, up to its free slots (the safety net)', async () => {
    const dir = await tempDir('safety-net')
    const gateway = await startTestGateway(dir)
    const t1 = await submitFresh(gateway.url)
    const t2 = await submitFresh(gateway.url)
    // A resumed session is sent nothing at birth: the broker would deliver what it queued, but
    // these offers went out before it subscribed. The safety net repairs that.
    const one = await rawGpu(gateway, 'gpu-1', TEST_SECRETS.gpu)
    await one.birth({ session: 'resumed', types: ['heygem'], capacity: 1 })
    expect(one.sent).toEqual([])
    await waitFor(() => one.sent.includes(t1), { what: 'the oldest task sent to the idle GPU' })
    expect(one.sent).not.toContain(t2) // one free slot: only the oldest
    expect(await one.claim(t1)).toBe('granted')
  })
})
