/**
 * Failed logins slowed per client address (docs/design.md §7): after 5 refused credentials the address
 * waits, 1 s and doubling, for HTTP and the progress WebSocket alike; other addresses are not held
 * up; a success clears nothing (failures expire after 10 minutes); and the log names the address, never any part of a secret.
 */
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import WebSocket from 'ws'
import { startBroker } from '../../broker/broker.js'
import { gatewayTestConfig } from '../../gateway/config.js'
import { startGateway, type GatewayHandle } from '../../gateway/gateway.js'
import { requestFrom, type Reply } from '../helpers/hostile-http.js'
import { clientIp, loopbackAddressesMissing } from '../helpers/loopback-addresses.js'
import { TEST_CREDENTIALS } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const missing = await loopbackAddressesMissing()

const API_SECRET = 'Qv7mKp2sXz9wTn4R'
const WRONG = 'Hj3xWq8LrB6yDs1F'

/** A gateway with API_SECRET whose every log line (debug and up) is kept. */
async function loggedGateway(): Promise<{ gw: GatewayHandle; lines: string[] }> {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'))
      done()
    },
  })
  const dir = await tempDir('http-logins')
  const config = gatewayTestConfig(join(dir, 'gateway'), {
    credentials: TEST_CREDENTIALS,
    mqttAllowAnonymous: false,
    apiSecret: API_SECRET,
  })
  const gw = await startGateway(config, { log: pino({ level: 'debug' }, sink), startBroker })
  onTestFinished(() => gw.close())
  return { gw, lines }
}

const queue = (gw: GatewayHandle, ip: string, secret: string): Promise<Reply> =>
  requestFrom(ip, `${gw.url}/api/heygem/queue`, { headers: { authorization: `Bearer ${secret}` } })

/** What the progress WebSocket from `ip` with `token` answers first. */
function wsFirst(
  gw: GatewayHandle,
  ip: string,
  token: string,
): Promise<{ code: number; msg?: string }> {
  const url = `${gw.url.replace(/^http/, 'ws')}/ws/progress/${'0'.repeat(8)}?token=${token}`
  const ws = new WebSocket(url, { localAddress: ip })
  onTestFinished(() => {
    ws.terminate()
  })
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer) =>
      resolve(JSON.parse(data.toString('utf8')) as { code: number }),
    )
    ws.once('error', reject)
  })
}

/** Every run of 4 characters of `secret`. */
const pieces = (secret: string): string[] =>
  Array.from({ length: secret.length - 3 }, (_, i) => secret.slice(i, i + 4))

describe.skipIf(missing !== null)('failed logins', () => {
  it('after 5 wrong secrets refuse the 6th at once with 429 and Retry-After, doubling the wait; other addresses are unaffected; a success clears nothing', async () => {
    const { gw, lines } = await loggedGateway()
    const ip = clientIp(100)
    for (let i = 0; i < 5; i++) {
      const reply = await queue(gw, ip, WRONG)
      expect(reply.status).toBe(401)
      expect(JSON.parse(reply.body)).toMatchObject({ code: 401, msg: '鉴权失败' })
    }
    const sixth = await queue(gw, ip, WRONG)
    expect(sixth.status).toBe(429)
    expect(sixth.headers['retry-after']).toBe('1')
    expect(sixth.headers.connection).toBe('close')
    expect(JSON.parse(sixth.body)).toMatchObject({
      code: 429,
      msg: '鉴权失败次数过多，请 1 秒后再试',
      data: { error: 'TOO_MANY_FAILED_LOGINS' },
    })
    // Refused unread: the right secret too, and on the progress WebSocket.
    expect((await queue(gw, ip, API_SECRET)).status).toBe(429)
    expect(await wsFirst(gw, ip, API_SECRET)).toMatchObject({ code: 429 })
    // The right secret from another address is served; a wrong one there is a plain 401.
    expect((await queue(gw, '127.0.0.1', API_SECRET)).status).toBe(200)
    expect((await queue(gw, clientIp(101), WRONG)).status).toBe(401)

    // Once the wait is over, the next wrong secret is looked at, refused, and doubles the wait.
    await waitFor(async () => (await queue(gw, ip, WRONG)).status === 401, {
      what: 'the 1 s wait over',
    })
    const doubled = await queue(gw, ip, WRONG)
    expect(doubled.status).toBe(429)
    expect(doubled.headers['retry-after']).toBe('2')

    // A right secret after the wait is served, but clears nothing: the next wrong one from the
    // address doubles the wait again (one held credential must not make guessing others cheap).
    await waitFor(async () => (await queue(gw, ip, API_SECRET)).status === 200, {
      what: 'the 2 s wait over',
    })
    const again = await queue(gw, ip, WRONG)
    expect(again.status).toBe(401)
    const longer = await queue(gw, ip, WRONG)
    expect(longer.status).toBe(429)
    expect(longer.headers['retry-after']).toBe('4')

    // Logged per address, with no piece of any secret.
    const refused = lines.filter((l) => l.includes('HTTP credentials refused'))
    expect(refused.length).toBeGreaterThanOrEqual(11)
    expect(refused.every((l) => l.includes(`"ip":"${ip}"`) || l.includes(clientIp(101)))).toBe(true)
    const leaked = [...pieces(WRONG), ...pieces(API_SECRET)].filter((p) =>
      lines.some((l) => l.includes(p)),
    )
    expect(leaked).toEqual([])
  })

  it('keeps serving a credential that held from the address before, while guesses from it wait', async () => {
    // An office NAT: one PC has the right secret, another keeps sending a wrong one.
    const { gw } = await loggedGateway()
    const ip = clientIp(103)
    expect((await queue(gw, ip, API_SECRET)).status).toBe(200)
    for (let i = 0; i < 5; i++) expect((await queue(gw, ip, WRONG)).status).toBe(401)
    expect((await queue(gw, ip, WRONG)).status).toBe(429)
    expect((await queue(gw, ip, `${API_SECRET}x`)).status).toBe(429) // a new guess waits too
    expect((await queue(gw, ip, API_SECRET)).status).toBe(200)
  })

  it('counts wrong tokens on the progress WebSocket as failed logins of the address', async () => {
    const { gw, lines } = await loggedGateway()
    const ip = clientIp(102)
    for (let i = 0; i < 5; i++) {
      expect(await wsFirst(gw, ip, WRONG)).toEqual({ code: 401, msg: '鉴权失败' })
    }
    expect(await wsFirst(gw, ip, WRONG)).toEqual({
      code: 429,
      msg: '鉴权失败次数过多，请 1 秒后再试',
    })
    expect((await queue(gw, ip, API_SECRET)).status).toBe(429) // shared with the HTTP API
    expect(await wsFirst(gw, clientIp(103), API_SECRET)).toMatchObject({ code: 404 })
    expect(lines.filter((l) => l.includes('progress socket: token refused'))).toHaveLength(5)
    expect(lines.some((l) => pieces(WRONG).some((p) => l.includes(p)))).toBe(false)
  })
})
