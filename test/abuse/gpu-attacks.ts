/**
 * What a GPU credential can do wrong (docs/design.md §3.9, point 8): a second GPU login (gpu-2, no real bridge
 * behind it) claims a task and then posts results over the size limit, twice, for the wrong
 * attempt, for another GPU's task; ends its task naming a file it did not store (the task's own
 * input as `.html`, another task's input); reads another GPU's inputs; and floods births.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import mqtt, { type MqttClient } from 'mqtt'
import { md5Buffer } from '../../lib/hash.js'
import { endClient } from '../../lib/mqtt.js'
import { PROTOCOL_VERSION, bridgeClientId, encodePayload, topicsFor } from '../../protocol/index.js'
import { mp4Bytes, wavBytes } from '../helpers/media.js'
import { expectThat, type Ledger } from './cases.js'
import { dataOf, httpCall, type Reply } from './http-raw.js'
import { drained } from './bridge-attacks.js'
import type { HonestPc } from './honest-pc.js'
import {
  AUTH,
  GPU2_AUTH,
  GPU_AUTH,
  SECRETS,
  UPLOAD_MAX_BYTES,
  type AbuseRelay,
} from './relay-procs.js'

const topics = topicsFor()

export interface GpuAttackContext {
  readonly relay: AbuseRelay
  readonly ledger: Ledger
  readonly pc: HonestPc
  readonly from: string
}

interface Attacker {
  readonly client: MqttClient
  readonly tasks: { taskId: string; attempt: number; at: number }[]
  readonly control: Record<string, unknown>[]
  epoch: number
  seq: number
  birth(ready: boolean): Promise<void>
  event(body: Record<string, unknown>): Promise<void>
}

async function attacker(relay: AbuseRelay): Promise<Attacker> {
  const client = await mqtt.connectAsync(relay.mqttUrl, {
    clientId: bridgeClientId('gpu-2'),
    username: 'gpu-2',
    password: SECRETS.gpu2,
    clean: true,
  })
  const a: Attacker = {
    client,
    tasks: [],
    control: [],
    epoch: Date.now(),
    seq: 0,
    async birth(ready) {
      a.epoch++
      const state = {
        v: PROTOCOL_VERSION,
        online: true,
        epoch: a.epoch,
        capacity: 1,
        adapter: 'run-server',
        version: 'abuse',
        heartbeatMs: 60_000,
        reason: 'birth',
        ready,
        service: ready ? 'ready' : 'loading',
        holding: [],
      }
      await client.publishAsync(topics.gpuState('gpu-2'), encodePayload(state), {
        qos: 1,
        retain: true,
      })
    },
    async event(body) {
      a.seq++
      await client.publishAsync(
        topics.gpuEvents('gpu-2'),
        encodePayload({ v: PROTOCOL_VERSION, seq: a.seq, ...body }),
        { qos: 1 },
      )
    },
  }
  client.on('message', (topic, payload) => {
    try {
      const value = JSON.parse(payload.toString()) as Record<string, unknown>
      if (topic === topics.gpuTasks('gpu-2')) {
        a.tasks.push({
          taskId: String(value.taskId),
          attempt: Number(value.attempt),
          at: Date.now(),
        })
      } else a.control.push(value)
    } catch {
      // not JSON: ignore
    }
  })
  await client.subscribeAsync([topics.gpuTasks('gpu-2'), topics.gpuControl('gpu-2')], { qos: 1 })
  return a
}

function postResult(
  relay: AbuseRelay,
  taskId: string,
  attempt: number,
  bytes: Buffer,
  auth: Record<string, string>,
): Promise<Reply> {
  return httpCall(relay.http, {
    path: `/api/relay/tasks/${taskId}/result?attempt=${String(attempt)}&ext=.mp4`,
    body: bytes,
    headers: { ...auth, 'content-type': 'application/octet-stream' },
    timeoutMs: 15_000,
  })
}

async function uploadFile(
  relay: AbuseRelay,
  bytes: Buffer,
  ext: string,
  from: string,
): Promise<string> {
  const boundary = 'gpuattack'
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="hash"\r\n\r\n${md5Buffer(bytes)}\r\n--${boundary}\r\nContent-Disposition: form-data; name="ext"\r\n\r\n${ext}\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f${ext}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ])
  const r = await httpCall(relay.http, {
    path: '/api/heygem/upload_file',
    body,
    headers: { ...AUTH, 'content-type': `multipart/form-data; boundary=${boundary}` },
    localAddress: from,
  })
  const hash = dataOf(r).hash
  if (typeof hash !== 'string') throw new Error(`upload: HTTP ${String(r.status)} ${r.text}`)
  return hash
}

async function statusOf(relay: AbuseRelay, id: string): Promise<string> {
  const r = await httpCall(relay.http, {
    path: `/api/heygem/task/status?task_id=${id}`,
    headers: AUTH,
  })
  return String(dataOf(r).status)
}

/** gpu-2 is born, a task is submitted, and gpu-2 claims it when its message arrives. */
async function claimOwnTask(o: {
  a: Attacker
  relay: AbuseRelay
  pc: HonestPc
  from: string
}): Promise<{ taskId: string; granted: boolean; audio: string; audioBytes: Buffer }> {
  const { a, relay, pc, from } = o
  await a.birth(true)
  await delay(500)
  let audioBytes: Buffer = Buffer.alloc(0)
  let audio = ''
  // No GPU is chosen at submit: gpu-1 and gpu-2 are both offered each task and the first claim
  // wins. Submit until gpu-2 wins one; the others simply run on gpu-1.
  let taskId = ''
  let granted = false
  const submitted: string[] = []
  for (let tries = 0; tries < 8 && !granted; tries++) {
    // Audio of its own each time: the ones gpu-1 takes run there, once each.
    audioBytes = wavBytes(`gpu-attack-${randomBytes(4).toString('hex')}`, 1024)
    audio = await uploadFile(relay, audioBytes, '.wav', from)
    const submit = await httpCall(relay.http, {
      path: '/api/heygem/task/submit',
      body: {
        audio_hash: audio,
        audio_ext: '.wav',
        video_hash: pc.video,
        video_ext: '.mp4',
        license_key: 'ATTACK-GPU',
        request_id: `gpu-attack-${String(tries)}-${randomBytes(4).toString('hex')}`,
      },
      headers: AUTH,
      localAddress: from,
    })
    taskId = String(dataOf(submit).task_id)
    submitted.push(taskId)
    const deadline = Date.now() + 1_000
    while (!a.tasks.some((t) => t.taskId === taskId) && Date.now() < deadline) await delay(50)
    if (!a.tasks.some((t) => t.taskId === taskId)) continue
    await a.event({ kind: 'claim', taskId, attempt: 1, epoch: a.epoch })
    const end = Date.now() + 5_000
    const answered = (): boolean =>
      a.control.some(
        (c) => (c.kind === 'claim-granted' || c.kind === 'claim-refused') && c.taskId === taskId,
      )
    while (!answered() && Date.now() < end) await delay(50)
    granted = a.control.some((c) => c.kind === 'claim-granted' && c.taskId === taskId)
  }
  // The extra ones still queued (none should be: gpu-1 takes them) are cancelled.
  for (const id of submitted.filter((x) => x !== taskId)) {
    await httpCall(relay.http, {
      path: '/api/heygem/task/cancel',
      body: { task_id: id },
      headers: AUTH,
      localAddress: from,
    })
  }
  return { taskId, granted, audio, audioBytes }
}

export async function gpuAttacks(ctx: GpuAttackContext): Promise<void> {
  const { relay, ledger, pc, from } = ctx
  const a = await attacker(relay)
  try {
    await drained(relay, pc)
    const claimed = await claimOwnTask({ a, relay, pc, from })
    const { taskId } = claimed
    const needClaim = (): void =>
      expectThat(
        claimed.granted,
        `gpu-2 could not claim a task of its own (${String(a.tasks.length)} task messages, control ${JSON.stringify(a.control.slice(-2))})`,
      )

    await ledger.run('gpu', 8, 'a result over RESULT_MAX_BYTES: 413 RESULT_TOO_LARGE', async () => {
      needClaim()
      const r = await postResult(
        relay,
        taskId,
        1,
        Buffer.alloc(UPLOAD_MAX_BYTES + 1024 * 1024, 3),
        GPU2_AUTH,
      )
      expectThat(
        r.status === 413 && dataOf(r).error === 'RESULT_TOO_LARGE',
        `HTTP ${String(r.status)} ${r.text.slice(0, 160)}`,
      )
    })
    await ledger.run('gpu', 8, 'a result for an attempt that is not current: refused', async () => {
      needClaim()
      const r = await postResult(relay, taskId, 2, mp4Bytes('wrong-attempt', 2048), GPU2_AUTH)
      expectThat(r.status === 409 || r.status === 404, `HTTP ${String(r.status)}`)
    })
    await ledger.run('gpu', 8, "a result for another GPU's task: 404", async () => {
      needClaim()
      const r = await postResult(relay, taskId, 1, mp4Bytes('other-gpu', 2048), GPU_AUTH)
      expectThat(r.status === 404, `HTTP ${String(r.status)}`)
    })
    const first = mp4Bytes(`gpu-attack-result-${taskId}`, 8192)
    let stored = ''
    await ledger.run('gpu', 8, 'the first result of the attempt is stored', async () => {
      needClaim()
      const r = await postResult(relay, taskId, 1, first, GPU2_AUTH)
      stored = String(dataOf(r).hash)
      expectThat(
        r.status === 200 && stored === md5Buffer(first),
        `HTTP ${String(r.status)} ${r.text.slice(0, 160)}`,
      )
    })
    await ledger.run(
      'gpu',
      8,
      'a second result for the same attempt: 409 RESULT_ALREADY_STORED naming the first',
      async () => {
        needClaim()
        const r = await postResult(relay, taskId, 1, mp4Bytes('second-result', 8192), GPU2_AUTH)
        expectThat(
          r.status === 409 && dataOf(r).error === 'RESULT_ALREADY_STORED',
          `HTTP ${String(r.status)} ${r.text.slice(0, 160)}`,
        )
        expectThat(JSON.stringify(r.json).includes(stored), `the reply does not name ${stored}`)
      },
    )
    const doneNaming = async (
      id: string,
      result: { hash: string; ext: string; size: number },
    ): Promise<void> => {
      await a.event({ kind: 'done', taskId: id, attempt: 1, result, elapsedMs: 1000 })
      await delay(1_500)
    }
    await ledger.run(
      'gpu',
      8,
      'done naming the stored result: done, served as video/mp4',
      async () => {
        needClaim()
        await doneNaming(taskId, { hash: stored, ext: '.mp4', size: first.length })
        const s = await statusOf(relay, taskId)
        expectThat(s === 'done', `the task is ${s}`)
        const res = await fetch(`${relay.base}/api/heygem/download?task_id=${taskId}`, {
          headers: AUTH,
        })
        const bytes = Buffer.from(await res.arrayBuffer())
        expectThat(bytes.equals(first), 'the download is not the stored result')
        expectThat(
          res.headers.get('content-type')?.startsWith('video/mp4') === true,
          `served as ${String(res.headers.get('content-type'))}`,
        )
      },
    )
    // A done naming a file this attempt did not store ends nothing well: the task does not become
    // done with it (the gateway takes the attempt as one without a result), and nothing of the
    // named file is served as the task's result. Each on a task of its own, claimed afresh.
    const refusedDone = async (
      named: (own: { audio: string; size: number }) => {
        hash: string
        ext: string
        size: number
      },
    ): Promise<void> => {
      await drained(relay, pc)
      const own = await claimOwnTask({ a, relay, pc, from })
      expectThat(own.granted, 'gpu-2 could not claim a second task of its own')
      await doneNaming(own.taskId, named({ audio: own.audio, size: own.audioBytes.length }))
      const s = await statusOf(relay, own.taskId)
      expectThat(s !== 'done', `the task became done with the named file`)
      const res = await fetch(`${relay.base}/api/heygem/download?task_id=${own.taskId}`, {
        headers: AUTH,
      })
      expectThat(res.status !== 200, `the download answered ${String(res.status)}`)
    }
    await ledger.run('gpu', 8, "done naming the task's own input as .html: refused", () =>
      // With its true size: the attack the issue describes (it was then served as text/html).
      refusedDone((own) => ({ hash: own.audio, ext: '.html', size: own.size })),
    )
    await ledger.run('gpu', 8, "done naming another task's input: refused", () =>
      refusedDone(() => ({ hash: pc.video, ext: '.mp4', size: pc.videoSize })),
    )
    await ledger.run('gpu', 8, 'gpu-2 reads the input of a gpu-1 task: 404', async () => {
      // The first honest task ran on gpu-1 long ago; its audio is its own (the avatar is shared).
      const honest = pc.accepted[0]
      const r = await httpCall(relay.http, {
        path: `/api/relay/files/${honest?.audio ?? 'x'}`,
        headers: GPU2_AUTH,
      })
      expectThat(r.status === 404, `HTTP ${String(r.status)}`)
    })

    await ledger.run(
      'gpu',
      8,
      '100 births from one GPU cost about one backlog of task messages',
      async () => {
        // A backlog on gpu-2 that it never runs: its own fresh tasks (cancelled afterwards).
        const ids: string[] = []
        for (let i = 0; i < 8; i++) {
          const h = await uploadFile(
            relay,
            wavBytes(`flood-${String(i)}-${randomBytes(4).toString('hex')}`, 512),
            '.wav',
            from,
          )
          const r = await httpCall(relay.http, {
            path: '/api/heygem/task/submit',
            body: {
              audio_hash: h,
              audio_ext: '.wav',
              video_hash: pc.video,
              video_ext: '.mp4',
              license_key: 'ATTACK-FLOOD',
            },
            headers: AUTH,
            localAddress: from,
          })
          ids.push(String(dataOf(r).task_id))
        }
        await delay(1_000)
        const backlog = new Set(a.tasks.filter((t) => ids.includes(t.taskId)).map((t) => t.taskId))
          .size
        const before = a.tasks.length
        for (let i = 0; i < 100; i++) await a.birth(false)
        await delay(1_500)
        const republished = a.tasks.length - before
        for (const id of ids) {
          await httpCall(relay.http, {
            path: '/api/heygem/task/cancel',
            body: { task_id: id, license_key: 'ATTACK-FLOOD' },
            headers: AUTH,
            localAddress: from,
          })
        }
        expectThat(relay.gateway.running, 'the gateway died')
        expectThat(
          republished <= 2 * backlog + 2,
          `${String(republished)} task messages for a backlog of ${String(backlog)}`,
        )
        return `${String(republished)} task messages for a backlog of ${String(backlog)}`
      },
    )
  } finally {
    const bye = { v: PROTOCOL_VERSION, online: false, epoch: a.epoch, reason: 'shutdown' }
    await a.client
      .publishAsync(topics.gpuState('gpu-2'), encodePayload(bye), { qos: 1, retain: true })
      .catch(() => undefined)
    await endClient(a.client).catch(() => undefined)
  }
}
