import { describe, expect, it } from 'vitest'
import { DEFAULT_WEBHOOK_CONFIG, type WebhookConfig } from '../../gateway/config.js'
import type { GatewayHandle } from '../../gateway/gateway.js'
import { call, media, upload } from '../helpers/pc.js'
import { startTestGateway } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { startWebhookReceiver } from '../helpers/webhook-receiver.js'
import { TASK_PATHS } from '../../protocol/index.js'

const HOOKS: WebhookConfig = { ...DEFAULT_WEBHOOK_CONFIG, allowPrivate: true }

/** A task submitted with `webhookUrl` and cancelled at once (its webhook is due): its id. */
async function cancelledWithHook(gateway: GatewayHandle, webhookUrl: string): Promise<string> {
  const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
  const video = await upload(gateway.url, media('v', 'video'), '.mp4')
  const { env } = await call(gateway.url, TASK_PATHS.submit, {
    audio_hash: audio,
    video_hash: video,
    license_key: 'K',
    webhook_url: webhookUrl,
  })
  expect(env.code, env.msg).toBe(0)
  const id = String(env.data.task_id)
  await call(gateway.url, TASK_PATHS.cancel, { task_id: id })
  return id
}

function lastStatus(gateway: GatewayHandle, id: string): string | undefined {
  return gateway.webhooks.deliveriesOf(id).at(-1)?.status
}

describe('hostile webhook receivers', () => {
  it('a receiver that never answers holds two slots, and one with an endless body is delivered', async () => {
    const dir = await tempDir('webhook-hostile')
    const silent = await startWebhookReceiver(() => 'hang')
    const endless = await startWebhookReceiver(() => 'endless')
    const good = await startWebhookReceiver()
    const webhooks = { ...HOOKS, concurrency: 3, timeoutMs: 120_000 }
    const gateway = await startTestGateway(dir, { webhooks })
    // More of its messages due than the dispatcher reads at a time: they must not hide the others.
    for (let i = 0; i < 8; i += 1) await cancelledWithHook(gateway, silent.url)
    await waitFor(() => silent.received.length === 2, { what: 'two requests hanging' })

    const streamed = await cancelledWithHook(gateway, endless.url)
    await waitFor(() => lastStatus(gateway, streamed) === 'delivered', {
      what: 'the endless body delivered at its status',
    })
    expect(gateway.webhooks.deliveriesOf(streamed)).toMatchObject([{ http_status: 200 }])
    const answered = await cancelledWithHook(gateway, good.url)
    await waitFor(() => lastStatus(gateway, answered) === 'delivered', {
      what: 'the good receiver delivered',
    })
    // The other six messages for the silent receiver wait for one of its two slots.
    expect(silent.received).toHaveLength(2)
  })

  it('gives up on an attempt that gets no answer within WEBHOOK_TIMEOUT_MS', async () => {
    const dir = await tempDir('webhook-timeout')
    const silent = await startWebhookReceiver(() => 'hang')
    const gateway = await startTestGateway(dir, {
      webhooks: { ...HOOKS, timeoutMs: 300, maxAttempts: 1 },
    })
    const id = await cancelledWithHook(gateway, silent.url)
    await waitFor(() => lastStatus(gateway, id) === 'given-up', { what: 'given up' })
    expect(gateway.webhooks.deliveriesOf(id)).toMatchObject([
      { attempt: 1, status: 'given-up', http_status: null, error: 'no answer within 300 ms' },
    ])
    expect(silent.received).toHaveLength(1)
  })
})
