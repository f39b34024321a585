import { createHmac } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEFAULT_WEBHOOK_CONFIG, type WebhookConfig } from '../../gateway/config.js'
import type { GatewayHandle } from '../../gateway/gateway.js'
import { SECRET_FILE } from '../../gateway/webhooks/webhook-secret.js'
import { call, media, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { startWebhookReceiver, type ReceivedWebhook } from '../helpers/webhook-receiver.js'
import { HEYGEM_PATHS, TASK_PATHS, WebhookPayload } from '../../protocol/index.js'

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`
/** Receivers on 127.0.0.1 allowed; retries a few tens of ms apart. */
const HOOKS: WebhookConfig = {
  ...DEFAULT_WEBHOOK_CONFIG,
  secret: SECRET,
  allowPrivate: true,
  backoffBaseMs: 50,
  backoffMaxMs: 200,
}

interface Inputs {
  readonly audio: string
  readonly video: string
}

/** A fresh audio and video uploaded: their hashes. */
async function uploadInputs(gateway: GatewayHandle): Promise<Inputs> {
  const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
  const video = await upload(gateway.url, media('v', 'video'), '.mp4')
  return { audio, video }
}

/** Submit (fresh inputs, on the task API unless told) with `webhookUrl`: the new task's id. */
async function submitWithHook(
  gateway: GatewayHandle,
  webhookUrl: string,
  o: { readonly path?: string; readonly inputs?: Inputs } = {},
): Promise<string> {
  const { audio, video } = o.inputs ?? (await uploadInputs(gateway))
  const { env } = await call(gateway.url, o.path ?? TASK_PATHS.submit, {
    audio_hash: audio,
    video_hash: video,
    license_key: 'K',
    webhook_url: webhookUrl,
  })
  expect(env.code, env.msg).toBe(0)
  return String(env.data.task_id)
}

/** Standard Webhooks' check, written here on its own: HMAC-SHA256 over `id.timestamp.body`. */
function signatureValid(hook: ReceivedWebhook, secret: string): boolean {
  const id = String(hook.headers['webhook-id'])
  const timestamp = String(hook.headers['webhook-timestamp'])
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const expected = createHmac('sha256', key)
    .update(`${id}.${timestamp}.${hook.body}`)
    .digest('base64')
  const signatures = String(hook.headers['webhook-signature']).split(' ')
  return signatures.includes(`v1,${expected}`)
}

function payloadOf(hook: ReceivedWebhook): WebhookPayload {
  return WebhookPayload.parse(JSON.parse(hook.body))
}

describe('webhooks', () => {
  it("posts a done task's status once, signed with the deployment's secret", async () => {
    const dir = await tempDir('webhook-done')
    const receiver = await startWebhookReceiver()
    const gateway = await startTestGateway(dir, { webhooks: HOOKS })
    const gpu = await startTestGpu(dir, 200)
    await startTestBridge(dir, { gateway, gpu })
    const inputs = await uploadInputs(gateway)
    const id = await submitWithHook(gateway, receiver.url, { inputs })

    const delivered = (): boolean =>
      gateway.webhooks.deliveriesOf(id).some((d) => d.status === 'delivered')
    await waitFor(delivered, {
      what: 'the delivery recorded',
      timeoutMs: 20_000,
    })
    const [delivery, ...more] = gateway.webhooks.deliveriesOf(id)
    expect(more).toEqual([])
    expect(delivery).toMatchObject({ attempt: 1, status: 'delivered', http_status: 200 })
    expect(delivery?.next_at).toBeNull()
    expect(receiver.received).toHaveLength(1)
    const [hook] = receiver.received
    if (!hook) throw new Error('no webhook')
    expect(hook.path).toBe('/hook')
    expect(hook.headers['content-type']).toBe('application/json')
    expect(hook.headers['webhook-id']).toMatch(/^msg_\w+$/)
    expect(Number(hook.headers['webhook-timestamp'])).toBeCloseTo(Date.now() / 1000, -2)
    expect(signatureValid(hook, SECRET)).toBe(true)
    expect(signatureValid(hook, `whsec_${Buffer.alloc(32, 8).toString('base64')}`)).toBe(false)
    expect(payloadOf(hook)).toMatchObject({
      type: 'task.done',
      data: {
        task_id: id,
        status: 'done',
        progress: 100,
        result_url: `/api/heygem/download?task_id=${id}`,
      },
    })

    // The same files again: done at once from the cache, and told so under a webhook-id of its own.
    const cached = await submitWithHook(gateway, receiver.url, { inputs })
    const [, again] = await waitFor(
      () => (receiver.received.length === 2 ? receiver.received : null),
      { what: 'the cache hit told' },
    )
    if (!again) throw new Error('no second webhook')
    expect(payloadOf(again)).toMatchObject({
      type: 'task.done',
      data: { task_id: cached, status: 'done' },
    })
    expect(again.headers['webhook-id']).not.toBe(hook.headers['webhook-id'])
  })

  it('retries a failing receiver with the same webhook-id: failed twice, then delivered', async () => {
    const dir = await tempDir('webhook-retry')
    const receiver = await startWebhookReceiver((n) => (n <= 2 ? 500 : 204))
    const gateway = await startTestGateway(dir, { webhooks: HOOKS })
    const seen: string[] = []
    gateway.webhooks.onDelivery((d) => seen.push(d.status))
    const id = await submitWithHook(gateway, receiver.url)
    await call(gateway.url, TASK_PATHS.cancel, { task_id: id })

    await waitFor(() => seen.includes('delivered'), { what: 'delivered' })
    const deliveries = gateway.webhooks.deliveriesOf(id)
    expect(deliveries.map((d) => [d.attempt, d.status, d.http_status])).toEqual([
      [1, 'failed', 500],
      [2, 'failed', 500],
      [3, 'delivered', 204],
    ])
    expect(seen).toEqual(['failed', 'failed', 'delivered'])
    expect(new Set(deliveries.map((d) => d.event_id)).size).toBe(1)
    expect(receiver.received).toHaveLength(3)
    expect(new Set(receiver.received.map((h) => h.headers['webhook-id'])).size).toBe(1)
    // The same bytes each time, each attempt signed anew.
    expect(new Set(receiver.received.map((h) => h.body)).size).toBe(1)
    expect(receiver.received.every((h) => signatureValid(h, SECRET))).toBe(true)
  })

  it('resumes a retry after a gateway restart, with the same webhook-id', async () => {
    const dir = await tempDir('webhook-restart')
    const receiver = await startWebhookReceiver(() => 503)
    const slow = { ...HOOKS, backoffBaseMs: 1_000, backoffMaxMs: 1_000 }
    const first = await startTestGateway(dir, { webhooks: slow })
    const id = await submitWithHook(first, receiver.url)
    await call(first.url, TASK_PATHS.cancel, { task_id: id })
    await waitFor(() => first.webhooks.deliveriesOf(id).length > 0, { what: 'a failed attempt' })
    await first.close()
    // Only the second gateway can be answered 200.
    receiver.answerWith(() => 200)

    const second = await startTestGateway(dir, { webhooks: slow })
    const deliveries = await waitFor(
      () => {
        const all = second.webhooks.deliveriesOf(id)
        return all.at(-1)?.status === 'delivered' ? all : null
      },
      { what: 'delivered after the restart' },
    )
    expect(deliveries.length).toBeGreaterThanOrEqual(2)
    expect(deliveries.slice(0, -1).every((d) => d.status === 'failed')).toBe(true)
    expect(deliveries.map((d) => d.attempt)).toEqual(deliveries.map((_, i) => i + 1))
    expect(new Set(receiver.received.map((h) => h.headers['webhook-id'])).size).toBe(1)
  })

  it("posts a cancelled task's status, submitted on the GPU server's own API", async () => {
    const dir = await tempDir('webhook-cancelled')
    const receiver = await startWebhookReceiver()
    // No WEBHOOK_SECRET: the gateway makes one in its data folder.
    const gateway = await startTestGateway(dir, { webhooks: { ...HOOKS, secret: null } })
    const made = (await readFile(join(dir, 'gateway', SECRET_FILE), 'utf8')).trim()
    const id = await submitWithHook(gateway, receiver.url, { path: HEYGEM_PATHS.submit })
    await call(gateway.url, TASK_PATHS.cancel, { task_id: id })

    const [hook] = await waitFor(() => (receiver.received.length > 0 ? receiver.received : null), {
      what: 'the webhook',
    })
    if (!hook) throw new Error('no webhook')
    expect(signatureValid(hook, made)).toBe(true)
    expect(payloadOf(hook)).toMatchObject({
      type: 'task.cancelled',
      data: { task_id: id, status: 'cancelled', result_url: null },
    })
  })

  it("forgets a task's deliveries with the task at retention", async () => {
    const dir = await tempDir('webhook-purge')
    const receiver = await startWebhookReceiver()
    const gateway = await startTestGateway(dir, { webhooks: HOOKS, retentionMs: 3_000 })
    const id = await submitWithHook(gateway, receiver.url)
    await call(gateway.url, TASK_PATHS.cancel, { task_id: id })
    await waitFor(() => gateway.webhooks.deliveriesOf(id).length === 1, { what: 'delivered' })
    await waitFor(() => gateway.store.get(id) === undefined, { what: 'the task purged' })
    expect(gateway.webhooks.deliveriesOf(id)).toEqual([])
  })
})
