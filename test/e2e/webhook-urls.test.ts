import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { DEFAULT_WEBHOOK_CONFIG, gatewayTestConfig } from '../../gateway/config.js'
import { startGateway, type GatewayHandle } from '../../gateway/gateway.js'
import type { Resolver } from '../../gateway/webhooks/url-guard.js'
import { call, media, upload } from '../helpers/pc.js'
import { log, startTestGateway, TEST_CREDENTIALS } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { startWebhookReceiver } from '../helpers/webhook-receiver.js'
import { ERRORS, HEYGEM_PATHS, TASK_PATHS } from '../../protocol/index.js'

const REFUSED = ERRORS.WEBHOOK_URL_REFUSED

/** Submit fresh inputs with `webhookUrl` on `path`: the HTTP status and the envelope. */
async function submit(
  gateway: GatewayHandle,
  webhookUrl: string,
  path: string = TASK_PATHS.submit,
) {
  const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
  const video = await upload(gateway.url, media('v', 'video'), '.mp4')
  return call(gateway.url, path, {
    audio_hash: audio,
    video_hash: video,
    license_key: 'K',
    webhook_url: webhookUrl,
  })
}

/** Private, loopback, link-local, unique-local and unspecified, in the forms URLs allow. */
const PRIVATE_URLS = [
  'http://127.1.2.3:9/hook',
  'http://2130706434/hook', // 127.0.0.2 in decimal
  'http://167772161/hook', // 10.0.0.1 in decimal
  'http://012.0.0.1/hook', // … in octal
  'http://0x7f.2/hook', // 127.0.0.2 in hex, two parts
  'http://0.0.0.0/',
  'http://0/',
  'http://10.1.2.3/',
  'http://172.16.0.1/',
  'http://192.168.1.10/',
  'http://100.64.0.1/',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::1]/',
  'http://[::]/',
  'http://[::ffff:127.0.0.1]/',
  'http://[::ffff:a00:1]/',
  'http://[fe80::1]/',
  'http://[fd12:3456::1]/',
  'https://localhost/',
]

const MALFORMED_URLS = [
  'ftp://93.184.215.14/hook',
  'file:///etc/passwd',
  'javascript:alert(1)',
  'http://user:secret@93.184.215.14/',
  'not a url',
]

describe('webhook URLs a submit may carry', () => {
  it('refuses private, loopback and link-local addresses in every spelling, and malformed URLs', async () => {
    const dir = await tempDir('webhook-refused')
    const gateway = await startTestGateway(dir)
    for (const url of PRIVATE_URLS) {
      const { status, env } = await submit(gateway, url)
      expect([url, status, env.data.error, env.msg]).toEqual([
        url,
        400,
        'WEBHOOK_URL_REFUSED',
        REFUSED.variants.private,
      ])
    }
    for (const url of MALFORMED_URLS) {
      const { status, env } = await submit(gateway, url, HEYGEM_PATHS.submit)
      expect([url, status, env.data.error, env.msg]).toEqual([
        url,
        400,
        'WEBHOOK_URL_REFUSED',
        REFUSED.text,
      ])
    }
    // The host callers reach the gateway by (its Host header), on any port.
    for (const url of [`${gateway.url}/api/heygem/health`, 'http://127.0.0.1:9/hook']) {
      expect([url, (await submit(gateway, url)).env.msg]).toEqual([url, REFUSED.variants.self])
    }
    const long = await submit(gateway, `http://93.184.215.14/${'a'.repeat(2048)}`)
    expect([long.status, long.env.data.error]).toEqual([400, 'VALIDATION_FAILED'])
    expect(gateway.store.history('K', 100, 0)).toEqual([])
    // A public address is taken (nothing is sent before the task ends).
    const taken = await submit(gateway, 'http://93.184.215.14/hook')
    expect(taken.env.code).toBe(0)
    expect(gateway.store.history('K', 100, 0)).toHaveLength(1)
  })

  it("with private addresses allowed, still refuses the gateway's own listener", async () => {
    const dir = await tempDir('webhook-self')
    const webhooks = { ...DEFAULT_WEBHOOK_CONFIG, allowPrivate: true }
    const gateway = await startTestGateway(dir, { webhooks })
    const port = new URL(gateway.url).port
    for (const url of [`${gateway.url}/`, `http://localhost:${port}/`, `http://[::1]:${port}/`]) {
      const { status, env } = await submit(gateway, url)
      expect([url, status, env.msg]).toEqual([url, 400, REFUSED.variants.self])
    }
    const receiver = await startWebhookReceiver()
    expect((await submit(gateway, receiver.url)).env.code).toBe(0)
  })

  it('checks the address again before sending: a name that now resolves to loopback is refused', async () => {
    const dir = await tempDir('webhook-rebinding')
    const receiver = await startWebhookReceiver()
    let answer = '93.184.215.14'
    const resolver: Resolver = (host) =>
      Promise.resolve(host === 'hooks.example' ? [{ address: answer, family: 4 }] : [])
    const config = gatewayTestConfig(join(dir, 'gateway'), {
      credentials: TEST_CREDENTIALS,
      mqttAllowAnonymous: false,
      webhooks: { ...DEFAULT_WEBHOOK_CONFIG, maxAttempts: 1 },
    })
    const gateway = await startGateway(config, { log, startBroker, webhookResolver: resolver })
    onTestFinished(() => gateway.close())
    const { env } = await submit(gateway, `http://hooks.example:${String(receiver.port)}/hook`)
    expect(env.code, env.msg).toBe(0)
    answer = '127.0.0.1' // the receiver's address, which a submit could not have named
    await call(gateway.url, TASK_PATHS.cancel, { task_id: env.data.task_id })

    const [delivery] = await waitFor(
      () => {
        const all = gateway.webhooks.deliveriesOf(String(env.data.task_id))
        return all.length > 0 ? all : null
      },
      { what: 'the attempt recorded' },
    )
    expect(delivery).toMatchObject({ status: 'given-up', http_status: null })
    expect(delivery?.error).toMatch(/refused/)
    expect(receiver.received).toEqual([])
  })
})
