/**
 * The gateway the bad-input suite attacks (test/e2e/bad-input*.test.ts), in its own process, with
 * a little state to protect: uploaded inputs, a task done (run as a bridge runs it: claim, result,
 * `done`) and one queued (no GPU is connected). Returns the case context and the rogue gpu-1.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { MqttClient } from 'mqtt'
import { onTestFinished } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { requestJson, uploadMultipart } from '../../lib/http-client.js'
import { endClient } from '../../lib/mqtt.js'
import { gpuBearer } from '../../protocol/index.js'
import { publishedAttempt } from './bad-input.js'
import type { CaseContext } from './bad-input-cases.js'
import { controlLog, finishAsBridge, rogue } from './bad-input-mqtt.js'
import { freePort, startChildGateway, type ChildGateway } from './child-process.js'
import { mp4Bytes } from './media.js'
import { media } from './pc.js'
import { TEST_SECRETS } from './relay.js'
import { tempDir } from './temp-dir.js'
import { waitFor } from './wait-for.js'

const API_SECRET = 'pc-api-secret-1'
const PC = { authorization: `Bearer ${API_SECRET}` }
const GPU1 = { authorization: `Bearer ${gpuBearer('gpu-1', TEST_SECRETS.gpu)}` }
const GPU2_SECRET = 'test-gpu-2-secret'

export interface BadInputGateway {
  readonly gw: ChildGateway
  readonly dataDir: string
  readonly httpPort: number
  readonly ctx: CaseContext
  readonly gpu1: MqttClient
  /** What gpu-1's control topic said so far. */
  readonly control: string[]
}

async function uploadInput(base: string, bytes: Buffer, ext: string): Promise<void> {
  const r = await uploadMultipart({
    url: `${base}/api/heygem/upload_file`,
    source: Readable.from([bytes]),
    size: bytes.length,
    fields: { hash: md5Buffer(bytes), ext },
    fileField: 'file',
    filename: `in${ext}`,
    headers: PC,
  })
  if (r.status !== 200) throw new Error(`setup upload: ${String(r.status)}`)
}

async function submitTask(base: string, body: object, dataDir: string): Promise<string> {
  const created = await requestJson(`${base}/api/heygem/task/submit`, { headers: PC, body })
  const taskId = (created.body as { data: { task_id: string } }).data.task_id
  // The submit's own last write (marking the task published, on the broker's PUBACK) lands
  // after its reply: wait for it, so the snapshots compare only what the bad input did.
  await waitFor(() => publishedAttempt(dataDir, taskId) === 1, { what: 'the task published' })
  return taskId
}

export async function startBadInputGateway(label: string): Promise<BadInputGateway> {
  const dir = await tempDir(label)
  const dataDir = join(dir, 'gateway')
  const ports = { http: await freePort(), mqtt: await freePort() }
  const gw = await startChildGateway(dataDir, ports, {
    API_SECRET,
    GPU_SECRETS: `gpu-1:${TEST_SECRETS.gpu},gpu-2:${GPU2_SECRET}`,
    UPLOAD_MAX_BYTES: '100000',
    JSON_BODY_LIMIT: '64kb',
    MQTT_MAX_PAYLOAD_BYTES: '65536',
    // Hundreds of submits and uploads from one address in a minute: not what the limits are for.
    RATE_LIMIT_SUBMITS_PER_MIN: '100000',
    RATE_LIMIT_UPLOADS_PER_MIN: '100000',
    // Dozens of wrong credentials from one address too: the waits are tested in http-logins.
    HTTP_LOGIN_FAILURES_BEFORE_WAIT: '100000',
  })
  const base = gw.url
  const audio = media('audio', 'audio')
  const video = media('video', 'video')
  await uploadInput(base, audio, '.wav')
  await uploadInput(base, video, '.mp4')
  const submit = {
    audio_hash: md5Buffer(audio),
    audio_ext: '.wav',
    video_hash: md5Buffer(video),
    video_ext: '.mp4',
    license_key: 'OWNER',
  }
  const gpu1 = await rogue({
    url: gw.mqttUrl,
    gpuId: 'gpu-1',
    secret: TEST_SECRETS.gpu,
    online: true,
  })
  onTestFinished(() => endClient(gpu1, true))
  const control = await controlLog(gpu1, 'gpu-1')
  const doneTaskId = await submitTask(base, submit, dataDir)
  const result = mp4Bytes('the-result', 6000)
  await finishAsBridge({ client: gpu1, control, base, gpuAuth: GPU1, taskId: doneTaskId, result })
  // Other audio, so it is no cache hit of the done one: it stays queued.
  const audio2 = media('audio-2', 'audio')
  await uploadInput(base, audio2, '.wav')
  const taskId = await submitTask(base, { ...submit, audio_hash: md5Buffer(audio2) }, dataDir)
  const ctx: CaseContext = {
    apiSecret: API_SECRET,
    pc: PC,
    gpu1: GPU1,
    gpu2Secret: GPU2_SECRET,
    submit,
    taskId,
    doneTaskId,
    result,
    unknown: randomUUID(),
    audio,
  }
  return { gw, dataDir, httpPort: ports.http, ctx, gpu1, control }
}

/** gpu-2 with valid credentials, and what its control topic says. */
export async function rogueGpu2(
  mqttUrl: string,
): Promise<{ gpu2: MqttClient; control2: string[] }> {
  const gpu2 = await rogue({ url: mqttUrl, gpuId: 'gpu-2', secret: GPU2_SECRET, online: false })
  onTestFinished(() => endClient(gpu2, true))
  return { gpu2, control2: await controlLog(gpu2, 'gpu-2') }
}
