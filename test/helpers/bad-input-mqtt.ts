/**
 * The bad-input suite's MQTT side (test/e2e/bad-input.test.ts): a rogue or buggy bridge with valid
 * credentials, and the setup step that makes a task done the way a bridge does (claim, result
 * over HTTP, `done` event), so the download and its `Range` and `?token=` can be tried.
 */
import { Readable } from 'node:stream'
import mqtt, { type MqttClient } from 'mqtt'
import { uploadRaw } from '../../lib/http-client.js'
import { bridgeClientId } from '../../protocol/index.js'
import { snapshot, type Tally } from './bad-input.js'
import type { CaseContext } from './bad-input-cases.js'
import { waitFor } from './wait-for.js'

/**
 * A bridge's login, speaking MQTT by hand. With `online`, it announces itself as a bridge does
 * (a birth: ready, runs heygem), so its claims are eligible; without, it is a GPU the gateway
 * has never seen online, whose claims are refused.
 */
export async function rogue(opts: {
  readonly url: string
  readonly gpuId: string
  readonly secret: string
  readonly online: boolean
}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(opts.url, {
    clientId: bridgeClientId(opts.gpuId),
    username: opts.gpuId,
    password: opts.secret,
    reconnectPeriod: 0,
  })
  if (opts.online) {
    const birth = { v: 1, online: true, epoch: 1, reason: 'birth', holding: [], ready: true }
    await client.publishAsync(
      `relay/gpus/${opts.gpuId}/state`,
      JSON.stringify({ ...birth, types: ['heygem'], session: 'resumed' }),
      { qos: 1, retain: true },
    )
  }
  return client
}

/** Everything gpu-1's control topic says, as text. */
export async function controlLog(client: MqttClient, gpuId: string): Promise<string[]> {
  const seen: string[] = []
  client.on('message', (_t, p) => seen.push(p.toString()))
  await client.subscribeAsync(`relay/gpus/${gpuId}/control`, { qos: 1 })
  return seen
}

/** Run `taskId` to done as a bridge would, with `result` as its video. */
export async function finishAsBridge(opts: {
  readonly client: MqttClient
  readonly control: readonly string[]
  readonly base: string
  readonly gpuAuth: Record<string, string>
  readonly taskId: string
  readonly result: Buffer
}): Promise<void> {
  const { client, control, taskId } = opts
  const events = 'relay/gpus/gpu-1/events'
  const ev = (seq: number, extra: object) =>
    JSON.stringify({ v: 1, taskId, attempt: 1, seq, ...extra })
  await client.publishAsync(events, ev(1, { kind: 'claim', epoch: 1 }), { qos: 1 })
  await waitFor(() => control.some((c) => c.includes('claim-granted') && c.includes(taskId)), {
    what: 'the claim granted',
  })
  const stored = await uploadRaw({
    url: `${opts.base}/api/relay/tasks/${taskId}/result?attempt=1&ext=.mp4`,
    source: Readable.from([opts.result]),
    size: opts.result.length,
    headers: opts.gpuAuth,
  })
  const ref = (stored.body as { data: { hash: string; ext: string; size: number } }).data
  await client.publishAsync(events, ev(2, { kind: 'done', result: ref, elapsedMs: 5 }), {
    qos: 1,
  })
  await waitFor(() => control.some((c) => c.includes('"ack"') && c.includes(taskId)), {
    what: 'the done acknowledged',
  })
}

/** Bad events and states from gpu-1 (and gpu-2 posing as gpu-1): dropped or refused, no change. */
export async function runMqttCases(opts: {
  readonly gpu1: MqttClient
  readonly control: string[]
  readonly gpu2: MqttClient
  readonly control2: string[]
  readonly dataDir: string
  readonly ctx: Pick<CaseContext, 'taskId' | 'unknown'>
  readonly tally: Tally
}): Promise<void> {
  const { gpu1, gpu2, tally } = opts
  const { taskId, unknown } = opts.ctx
  const before = await snapshot(opts.dataDir)
  const events = 'relay/gpus/gpu-1/events'
  const ev = (extra: object) => JSON.stringify({ v: 1, taskId, attempt: 1, seq: 5, ...extra })
  const done = {
    kind: 'done',
    result: { hash: 'a'.repeat(32), ext: '.mp4', size: 1 },
    elapsedMs: 1,
  }
  const cases: [string, string, string | Buffer][] = [
    ['malformed JSON', events, '{"kind": "done",'],
    ['not an object', events, '42'],
    ['null', events, 'null'],
    ['a null byte', events, Buffer.from([0])],
    ['binary garbage', events, Buffer.from([0xff, 0xfe, 0x00, 0x81])],
    ['deep JSON', events, `${'['.repeat(5_000)}${']'.repeat(5_000)}`],
    ['an unknown kind', events, ev({ kind: 'explode' })],
    ['progress beyond 100', events, ev({ kind: 'progress', progress: 500, stage: 'rendering' })],
    [
      'progress NaN',
      events,
      ev({ kind: 'progress', stage: 'rendering' }).replace('}', ',"progress":NaN}'),
    ],
    ['progress negative', events, ev({ kind: 'progress', progress: -1, stage: 'rendering' })],
    [
      'progress for a task not running',
      events,
      ev({ kind: 'progress', progress: 50, stage: 'rendering' }),
    ],
    ['done for a task not running', events, ev(done)],
    [
      'error for a task not running',
      events,
      ev({ kind: 'error', message: 'boom', retryable: false }),
    ],
    [
      'claim of an unknown task',
      events,
      JSON.stringify({ v: 1, kind: 'claim', taskId: unknown, attempt: 1, seq: 1, epoch: 1 }),
    ],
    ['claim of a wrong attempt', events, ev({ kind: 'claim', attempt: 9, epoch: 1 })],
    ['claim with attempt 1e308', events, ev({ kind: 'claim', attempt: 1e308, epoch: 1 })],
    ['claim with a negative seq', events, ev({ kind: 'claim', seq: -3, epoch: 1 })],
    ['claim with task id a path', events, ev({ kind: 'claim', taskId: '../../x', epoch: 1 })],
    [
      'an event with a huge string',
      events,
      ev({ kind: 'error', message: 'x'.repeat(50_000), retryable: true }),
    ],
    ['an event in version 2', events, ev({ kind: 'claim', v: 2, epoch: 1 })],
    [
      '__proto__ in an event',
      events,
      `{"__proto__":{"x":1},${ev({ kind: 'claim', attempt: 7, epoch: 1 }).slice(1)}`,
    ],
    ['a garbled state', 'relay/gpus/gpu-1/state', '{"v":1,"online":"yes"}'],
    ['a state with a bad epoch', 'relay/gpus/gpu-1/state', '{"v":1,"online":false,"epoch":-5}'],
    ['a state with epoch 1e308', 'relay/gpus/gpu-1/state', '{"v":1,"online":false,"epoch":1e308}'],
    ['a state of a null byte', 'relay/gpus/gpu-1/state', Buffer.from([0])],
  ]
  for (const [, topic, payload] of cases) {
    await gpu1.publishAsync(topic, payload, { qos: 1 })
    tally.tried++
  }
  // The gateway has handled all of them once it answers a claim sent after them.
  await gpu1.publishAsync(events, ev({ kind: 'claim', attempt: 8, seq: 1, epoch: 1 }), { qos: 1 })
  await waitFor(() => opts.control.some((r) => r.includes('"attempt":8')), {
    what: 'the gateway caught up',
  })
  if ((await snapshot(opts.dataDir)) !== before)
    tally.changed.push('MQTT events and states from gpu-1')

  // A GPU never seen online claiming a task from its own topic is refused (not ready);
  // publishing as gpu-1 drops its connection.
  await gpu2.publishAsync('relay/gpus/gpu-2/events', ev({ kind: 'claim', epoch: 1 }), { qos: 1 })
  await waitFor(() => opts.control2.some((r) => r.includes('not-ready')), {
    what: 'claim refused as not ready',
  })
  tally.tried++
  const dropped = new Promise<void>((resolve) => gpu2.once('close', () => resolve()))
  gpu2.publish(events, ev(done), { qos: 1 })
  await dropped
  tally.tried++
  const oversized = new Promise<void>((resolve) => gpu1.once('close', () => resolve()))
  gpu1.publish(events, Buffer.alloc(100_000, 'x'), { qos: 1 })
  await oversized
  tally.tried++
  if ((await snapshot(opts.dataDir)) !== before)
    tally.changed.push('MQTT from gpu-2, oversized payload')
}
