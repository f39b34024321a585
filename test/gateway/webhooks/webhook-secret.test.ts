import { createHmac } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { gatewayConfigFromEnv } from '../../../gateway/config.js'
import {
  isWebhookSecret,
  loadWebhookKey,
  SECRET_FILE,
  signWebhook,
} from '../../../gateway/webhooks/webhook-secret.js'
import { log } from '../../helpers/relay.js'
import { tempDir } from '../../helpers/temp-dir.js'

const SECRET = `whsec_${Buffer.alloc(24, 1).toString('base64')}`

describe('the webhook secret', () => {
  it('is whsec_ and the base64 of 24 to 64 bytes; anything else stops the gateway at start', () => {
    expect(isWebhookSecret(SECRET)).toBe(true)
    expect(isWebhookSecret(`whsec_${Buffer.alloc(64, 1).toString('base64')}`)).toBe(true)
    expect(isWebhookSecret(`whsec_${Buffer.alloc(23, 1).toString('base64')}`)).toBe(false)
    expect(isWebhookSecret(`whsec_${Buffer.alloc(65, 1).toString('base64')}`)).toBe(false)
    expect(isWebhookSecret(Buffer.alloc(32, 1).toString('base64'))).toBe(false)
    expect(isWebhookSecret('whsec_not base64!')).toBe(false)
    expect(gatewayConfigFromEnv({ WEBHOOK_SECRET: SECRET }).webhooks.secret).toBe(SECRET)
    expect(() => gatewayConfigFromEnv({ WEBHOOK_SECRET: 'hunter2' })).toThrow(/WEBHOOK_SECRET/)
  })

  it('is made once in the data folder when not configured, and kept across restarts', async () => {
    const dir = await tempDir('webhook-secret')
    const first = await loadWebhookKey({ configured: null, dataDir: dir, log })
    const written = (await readFile(join(dir, SECRET_FILE), 'utf8')).trim()
    expect(isWebhookSecret(written)).toBe(true)
    expect((await stat(join(dir, SECRET_FILE))).mode & 0o777).toBe(0o600)
    const again = await loadWebhookKey({ configured: null, dataDir: dir, log })
    expect(again.equals(first)).toBe(true)
    const configured = await loadWebhookKey({ configured: SECRET, dataDir: dir, log })
    expect(configured.equals(Buffer.alloc(24, 1))).toBe(true)
  })

  it('signs `id.timestamp.body` with HMAC-SHA256 of the decoded key, as Standard Webhooks', () => {
    const key = Buffer.alloc(24, 1)
    const body = '{"type":"task.done"}'
    const expected = createHmac('sha256', key).update(`msg_1.1700000000.${body}`).digest('base64')
    expect(signWebhook(key, { id: 'msg_1', timestamp: 1_700_000_000, body })).toBe(`v1,${expected}`)
  })
})
