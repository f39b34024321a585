/**
 * A gateway behind a proxy (docs/design.md §7, `HTTP_TRUSTED_PROXIES`): the proxy's
 * X-Forwarded-For names the caller, so failed-login waits (and rate limits) hold the caller, not
 * every PC behind the proxy; the proxy's own connections are not capped per address. Anyone
 * else's X-Forwarded-For is only a claim and is ignored.
 */
import { join } from 'node:path'
import { Agent, request } from 'node:http'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { gatewayTestConfig } from '../../gateway/config.js'
import { startGateway, type GatewayHandle } from '../../gateway/gateway.js'
import { silentLogger } from '../../lib/logger.js'
import { requestFrom } from '../helpers/hostile-http.js'
import { clientIp, loopbackAddressesMissing } from '../helpers/loopback-addresses.js'
import { TEST_CREDENTIALS } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'

const missing = await loopbackAddressesMissing()
const API_SECRET = 'Zp4nRt8wKq2xLm6V'
const WRONG = 'Bc9dFg3hJk5lNp7Q'

async function gateway(trustedProxies: string[]): Promise<GatewayHandle> {
  const dir = await tempDir('http-proxies')
  const config = gatewayTestConfig(join(dir, 'gateway'), {
    credentials: TEST_CREDENTIALS,
    mqttAllowAnonymous: false,
    apiSecret: API_SECRET,
    maxConnectionsPerIp: 2,
    trustedProxies,
  })
  const gw = await startGateway(config, { log: silentLogger(), startBroker })
  onTestFinished(() => gw.close())
  return gw
}

const queue = (gw: GatewayHandle, from: string, as: { secret: string; forwardedFor: string }) =>
  requestFrom(from, `${gw.url}/api/heygem/queue`, {
    headers: { authorization: `Bearer ${as.secret}`, 'x-forwarded-for': as.forwardedFor },
  })

describe.skipIf(missing !== null)('a gateway behind a trusted proxy', () => {
  it('holds the forwarded caller after 5 wrong secrets, not the proxy, and ignores the header from anyone else', async () => {
    const proxy = clientIp(120)
    const gw = await gateway([proxy])
    for (let i = 0; i < 5; i++) {
      expect((await queue(gw, proxy, { secret: WRONG, forwardedFor: '203.0.113.5' })).status).toBe(
        401,
      )
    }
    expect((await queue(gw, proxy, { secret: WRONG, forwardedFor: '203.0.113.5' })).status).toBe(
      429,
    )
    // Another PC behind the same proxy is not held up.
    expect(
      (await queue(gw, proxy, { secret: API_SECRET, forwardedFor: '198.51.100.7, 203.0.113.6' }))
        .status,
    ).toBe(200)
    // A caller that is no proxy cannot escape its own wait by naming others.
    const direct = clientIp(121)
    for (let i = 0; i < 5; i++) {
      expect(
        (await queue(gw, direct, { secret: WRONG, forwardedFor: `192.0.2.${String(i)}` })).status,
      ).toBe(401)
    }
    expect((await queue(gw, direct, { secret: WRONG, forwardedFor: '192.0.2.99' })).status).toBe(
      429,
    )
  })

  it("does not cap the proxy's connections by its own address (its callers share them)", async () => {
    const proxy = clientIp(122)
    const gw = await gateway([proxy])
    const port = Number(new URL(gw.url).port)
    // Five keep-alive connections open at once from the proxy, over the cap of 2: all served.
    const statuses = await Promise.all(
      Array.from({ length: 5 }, (_, i) => {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 })
        onTestFinished(() => {
          agent.destroy()
        })
        return new Promise<number>((resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port,
              path: '/api/heygem/queue',
              localAddress: proxy,
              agent,
              headers: {
                authorization: `Bearer ${API_SECRET}`,
                'x-forwarded-for': `198.51.100.${String(i)}`,
              },
            },
            (res) => {
              res.resume()
              res.on('end', () => resolve(res.statusCode ?? 0))
            },
          )
          req.on('error', reject)
          req.end()
        })
      }),
    )
    expect(statuses).toEqual([200, 200, 200, 200, 200])
  })
})
