/**
 * Limits that apply to the caller, not to what it says (docs/design.md §3.9, points 1, 9): wrong secrets from one
 * address back off (401 five times, then 429 TOO_MANY_FAILED_LOGINS with Retry-After, doubling, a
 * a success clearing nothing) without touching other addresses; a new license_key per submit does not
 * get past the rate limit; thousands of very long license keys leave no memory behind; no part of
 * a refused secret reaches the log.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { expectThat, type Ledger } from './cases.js'
import { dataOf, httpCall, type Reply } from './http-raw.js'
import { AUTH, type AbuseRelay } from './relay-procs.js'

export interface LoginAttackContext {
  readonly relay: AbuseRelay
  readonly ledger: Ledger
  readonly address: (block: number, i: number) => string
  readonly measureRss: <T>(what: string, fn: () => Promise<T>) => Promise<T>
  /** Hashes of a task that is done: a submit of them is a cache hit (no GPU work). */
  readonly doneInputs: () => Promise<{ audio: string; video: string }>
}

const BACKOFF_MSG = /^鉴权失败次数过多，请 \d+ 秒后再试$/

function queue(port: number, from: string, secret: string): Promise<Reply> {
  return httpCall(port, {
    path: '/api/heygem/queue',
    headers: { authorization: `Bearer ${secret}` },
    localAddress: from,
  })
}

function retryAfter(reply: Reply): number {
  return Number(reply.headers['retry-after'] ?? NaN)
}

export async function loginAttacks(ctx: LoginAttackContext): Promise<string[]> {
  const { relay, ledger, address } = ctx
  const port = relay.http
  const secret = AUTH.authorization.slice('Bearer '.length)
  const refusedSecrets: string[] = []
  const wrong = (): string => {
    const s = `wrong-secret-${randomBytes(8).toString('hex')}`
    refusedSecrets.push(s)
    return s
  }
  const from = address(30, 0)

  await ledger.run(
    { area: 'logins', point: 9, name: 'five wrong secrets from one address: 401 鉴权失败 each' },
    async () => {
      for (let i = 0; i < 5; i++) {
        const r = await queue(port, from, wrong())
        expectThat(
          r.status === 401 && r.json?.msg === '鉴权失败',
          `try ${String(i + 1)}: HTTP ${String(r.status)} ${r.text}`,
        )
      }
    },
  )
  let first = NaN
  await ledger.run(
    {
      area: 'logins',
      point: 9,
      name: 'the sixth from that address: 429 TOO_MANY_FAILED_LOGINS with Retry-After',
    },
    async () => {
      const r = await queue(port, from, wrong())
      first = retryAfter(r)
      expectThat(r.status === 429, `HTTP ${String(r.status)}`)
      expectThat(dataOf(r).error === 'TOO_MANY_FAILED_LOGINS', `code ${String(dataOf(r).error)}`)
      expectThat(BACKOFF_MSG.test(String(r.json?.msg)), `msg ${String(r.json?.msg)}`)
      expectThat(first >= 1 && first <= 300, `Retry-After ${String(first)}`)
    },
  )
  await ledger.run(
    {
      area: 'logins',
      point: 9,
      name: 'during the backoff even the right secret from that address is refused at once',
    },
    async () => {
      const r = await queue(port, from, secret)
      expectThat(r.status === 429, `HTTP ${String(r.status)}`)
      expectThat(r.ms < 1_000, `took ${r.ms.toFixed(0)} ms`)
    },
  )
  await ledger.run(
    { area: 'logins', point: 9, name: 'another address with the right secret is not slowed' },
    async () => {
      const r = await queue(port, address(30, 1), secret)
      expectThat(r.status === 200, `HTTP ${String(r.status)}`)
    },
  )
  await ledger.run(
    {
      area: 'logins',
      point: 9,
      name: 'after Retry-After the right secret works, and the next wrong one is looked at again',
    },
    async () => {
      await delay(((Number.isFinite(first) ? first : 1) + 0.2) * 1000)
      const ok = await queue(port, from, secret)
      expectThat(ok.status === 200, `HTTP ${String(ok.status)}`)
      const again = await queue(port, from, wrong())
      expectThat(
        again.status === 401,
        `a wrong secret after the wait: HTTP ${String(again.status)}`,
      )
    },
  )
  await ledger.run(
    { area: 'logins', point: 9, name: 'a second backoff waits at least twice as long' },
    async () => {
      const other = address(31, 0)
      const waits: number[] = []
      for (let i = 0; i < 6; i++) await queue(port, other, wrong())
      const r1 = await queue(port, other, wrong())
      waits.push(retryAfter(r1))
      await delay(((Number.isFinite(waits[0]) ? (waits[0] ?? 1) : 1) + 0.2) * 1000)
      await queue(port, other, wrong())
      const r2 = await queue(port, other, wrong())
      waits.push(retryAfter(r2))
      expectThat(
        r1.status === 429 && r2.status === 429,
        `HTTP ${String(r1.status)}, ${String(r2.status)}`,
      )
      const [a = NaN, b = NaN] = waits
      expectThat(b >= 2 * a, `Retry-After ${String(a)} then ${String(b)}`)
    },
  )

  await ledger.run(
    {
      area: 'logins',
      point: 9,
      name: 'a new license_key on every submit does not get past the rate limit',
    },
    async () => {
      const inputs = await ctx.doneInputs()
      // In three waves of 30: together under HTTP_MAX_CONNECTIONS_PER_IP (64), which would
      // otherwise close the extra connections before the limiter is reached.
      const replies = []
      for (let wave = 0; wave < 3; wave++) {
        const sent = Array.from({ length: 30 }, (_, j) => wave * 30 + j)
        replies.push(
          ...(await Promise.all(
            sent.map((i) =>
              httpCall(port, {
                path: '/api/heygem/task/submit',
                body: {
                  audio_hash: inputs.audio,
                  audio_ext: '.wav',
                  video_hash: inputs.video,
                  video_ext: '.mp4',
                  license_key: `KEY-${String(i)}-${randomBytes(6).toString('hex')}`,
                },
                headers: AUTH,
                localAddress: address(32, 0),
              }),
            ),
          )),
        )
      }
      const limited = replies.filter(
        (r) => r.status === 429 && dataOf(r).error === 'RATE_LIMITED',
      ).length
      expectThat(
        limited >= 25,
        `${String(limited)} of 90 submits with new keys refused (limit 60/min)`,
      )
      return `${String(limited)} of 90 refused`
    },
  )

  await ledger.run(
    {
      area: 'logins',
      point: 1,
      name: '2,000 submits with 64 kB random license keys: memory stays bounded',
    },
    () =>
      ctx.measureRss('2,000 long license keys', async () => {
        let fiveHundreds = 0
        for (let batch = 0; batch < 40; batch++) {
          const replies = await Promise.all(
            Array.from({ length: 50 }, (_, j) =>
              httpCall(port, {
                path: '/api/heygem/task/submit',
                body: {
                  audio_hash: 'a'.repeat(32),
                  audio_ext: '.wav',
                  video_hash: 'b'.repeat(32),
                  video_ext: '.mp4',
                  license_key: randomBytes(48 * 1024).toString('base64'),
                },
                headers: AUTH,
                localAddress: address(33, batch * 50 + j),
              }),
            ),
          )
          fiveHundreds += replies.filter((r) => r.status >= 500).length
        }
        expectThat(fiveHundreds === 0, `${String(fiveHundreds)} answered 5xx`)
      }),
  )
  return refusedSecrets
}
