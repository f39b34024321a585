/**
 * The abuse suite (docs/design.md §3.9): the gateway (embedded broker), the bridge and the
 * fake run_server each in their own process, real sockets, the gateway's data folder on a 64 MB
 * tmpfs and its wall clock under libfaketime. While an honest PC keeps submitting and the GPU
 * runs its work, every point 1–9 of docs/design.md §3.9 is attacked, each distinct hostile input, connection
 * pattern or fault one case (test/abuse/cases.ts). It ends with one line:
 * `N attacks tried, 0 crashes, 0 lost, 0 duplicate runs, max RSS growth X MB, max added latency Y ms`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { unmet } from '../helpers/system-deps.js'
import { bridgeAttacks } from './bridge-attacks.js'
import { Ledger } from './cases.js'
import { clockAttacks } from './clock-attacks.js'
import { diskAttacks } from './disk-attacks.js'
import { gpuAttacks } from './gpu-attacks.js'
import { HonestPc } from './honest-pc.js'
import { httpAttacks } from './http-attacks.js'
import { inputAttacks } from './input-attacks.js'
import { loginAttacks } from './login-attacks.js'
import { mqttAttacks } from './mqtt-attacks.js'
import { MAX_RSS_GROWTH_MB, Metrics } from './metrics.js'
import { startAbuseRelay, type AbuseRelay } from './relay-procs.js'
import { slowReaderAttack } from './slow-reader.js'

/** Hostile address `i` of block `block`: 127.{block}.x.y, never the honest 127.0.0.1. */
const address = (block: number, i: number): string =>
  `127.${String(block)}.${String(Math.floor(i / 250))}.${String(2 + (i % 250))}`

/** ABUSE_AREAS=http,gpu runs only those areas (and the summary, without its N and coverage checks). */
const AREAS = (process.env.ABUSE_AREAS ?? '').split(',').filter((a) => a !== '')
const wanted = (area: string): boolean => AREAS.length === 0 || AREAS.includes(area)

const say = (line: string): void => {
  process.stdout.write(`abuse: ${line}\n`)
}

describe('the abuse suite: hostile clients, full disks, slow readers and clock steps', () => {
  const ledger = new Ledger()
  let dir = ''
  let relay: AbuseRelay | undefined
  let pc: HonestPc | undefined
  let metrics: Metrics | undefined
  const secretsRefused: string[] = []
  let bridgeConnections = 0

  const need = (): { relay: AbuseRelay; pc: HonestPc; metrics: Metrics } => {
    if (!relay || !pc || !metrics) throw new Error('the relay did not start')
    return { relay, pc, metrics }
  }
  const areaPasses = (area: string): void => {
    const failures = ledger.describe(area)
    say(
      `${area}: ${String(ledger.count(area) - ledger.failures(area).length)}/${String(ledger.count(area))} cases held`,
    )
    if (failures !== '') say(`${area} failures:\n${failures}`)
    expect(failures).toBe('')
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpu-relay-abuse-'))
    // Ports are picked free, then bound by the child: on a shared machine another process may take
    // one in between (EADDRINUSE); then the relay starts again on new ports.
    for (let attempt = 1; relay === undefined; attempt++) {
      try {
        relay = await startAbuseRelay(join(dir, `run-${String(attempt)}`))
      } catch (err) {
        if (attempt >= 3 || !String(err).includes('EADDRINUSE')) throw err
        say(`a port was taken meanwhile; starting again (${String(err).slice(0, 120)})`)
      }
    }
    relay.bridge.onOutput((text) => {
      bridgeConnections += text.split('"msg":"connected"').length - 1
    })
    pc = new HonestPc(relay.http)
    await pc.start()
    metrics = new Metrics(relay, pc)
    // The first honest task done: the relay works before anything is attacked.
    const started = Date.now()
    while (pc.accepted.length - pc.unfinished() < 1) {
      if (Date.now() - started > 30_000)
        throw new Error('no honest task finished before the attacks')
      await delay(100)
    }
    await metrics.baseline(4_000)
    say(
      `baseline: honest p95 ${metrics.baselineP95.toFixed(1)} ms, gateway RSS ${String(await relay.gatewayRssMb())} MB`,
    )
  }, 90_000)

  afterAll(async () => {
    await pc?.stop().catch(() => undefined)
    await relay?.close()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  }, 60_000)

  it.skipIf(!wanted('inputs'))(
    'answers hostile values on every endpoint below 500 (§1, §9)',
    async () => {
      const { relay, metrics } = need()
      await metrics.phase('inputs', () => inputAttacks(relay.http, ledger, (i) => address(40, i)))
      areaPasses('inputs')
    },
    60_000,
  )

  it.skipIf(!wanted('http'))(
    'closes hostile HTTP connections early and keeps memory bounded (§1, §3, §4)',
    async () => {
      const { relay, metrics } = need()
      await metrics.phase('http', () =>
        httpAttacks({ relay, ledger, address, measureRss: (w, fn) => metrics.measureRss(w, fn) }),
      )
      areaPasses('http')
    },
    120_000,
  )

  it.skipIf(!wanted('logins'))(
    'slows wrong secrets per address and limits per caller, whatever license_key it states (§1, §9)',
    async () => {
      const { relay, pc, metrics } = need()
      const refused = await metrics.phase('logins', () =>
        loginAttacks({
          relay,
          ledger,
          address,
          measureRss: (w, fn) => metrics.measureRss(w, fn),
          doneInputs: () => {
            const first = pc.accepted[0]
            return Promise.resolve({ audio: first?.audio ?? '', video: pc.video })
          },
        }),
      )
      secretsRefused.push(...refused)
      areaPasses('logins')
    },
    120_000,
  )

  it.skipIf(!wanted('mqtt'))(
    'refuses hostile MQTT connections early and slows wrong passwords (§1, §9)',
    async () => {
      const { relay, metrics } = need()
      const refused = await metrics.phase('mqtt', () =>
        mqttAttacks({ relay, ledger, address, measureRss: (w, fn) => metrics.measureRss(w, fn) }),
      )
      secretsRefused.push(...refused)
      areaPasses('mqtt')
    },
    90_000,
  )

  it.skipIf(!wanted('slow-reader'))(
    'lets a subscriber that stops reading hurt only itself (§2)',
    async () => {
      const { relay, metrics } = need()
      await metrics.phase('slow-reader', () =>
        slowReaderAttack(relay, ledger, { from: address(60, 0), say }),
      )
      areaPasses('slow-reader')
    },
    60_000,
  )

  it.skipIf(!wanted('gpu'))(
    'bounds what a GPU credential can store and name as its result, and what a birth flood costs (§8)',
    async () => {
      const { relay, pc, metrics } = need()
      // The honest PC pauses its submits meanwhile: a GPU is still chosen at submit, so honest
      // work given to gpu-2 (which claims only what it is told to) would wait until gpu-2 leaves.
      await metrics.phase('gpu', () =>
        pc.withoutSubmits(() => gpuAttacks({ relay, ledger, pc, from: address(61, 0) })),
      )
      areaPasses('gpu')
    },
    90_000,
  )

  it.skipIf(!wanted('clock'))(
    'survives clock steps of the gateway without expiring, failing or re-running anything (§5)',
    async (ctx) => {
      const { relay, pc, metrics } = need()
      const reason = unmet(
        relay.clock ? null : 'libfaketime not installed (apt-get install faketime)',
      )
      if (reason !== null || !relay.clock) return ctx.skip(reason ?? 'no clock')
      const clock = relay.clock
      await metrics.phase('clock', () => clockAttacks({ relay, ledger, pc, clock }), {
        outages: true,
      })
      areaPasses('clock')
    },
    150_000,
  )

  it.skipIf(!wanted('bridge'))(
    'accepts a bridge with a far-future past and one with a damaged inbox (§6, §7)',
    async () => {
      const { relay, pc, metrics } = need()
      const reason = unmet(
        relay.faketime ? null : 'libfaketime not installed (apt-get install faketime)',
      )
      if (reason !== null) say(`far-future epoch case not run: ${reason}`)
      await metrics.phase('bridge', () =>
        bridgeAttacks({ relay, ledger, pc, faketime: relay.faketime, dir }),
      )
      areaPasses('bridge')
    },
    150_000,
  )

  it.skipIf(!wanted('disk'))(
    'refuses new work on a full disk, crashes nothing and resumes by itself (§3)',
    async (ctx) => {
      const { relay, pc, metrics } = need()
      const reason = unmet(relay.noTmpfsReason)
      if (reason !== null) return ctx.skip(reason)
      await metrics.phase(
        'disk',
        () =>
          diskAttacks({ relay, ledger, pc, address, bridgeConnections: () => bridgeConnections }),
        { outages: true },
      )
      areaPasses('disk')
    },
    150_000,
  )

  it('ends with 0 crashes, 0 lost, 0 duplicate runs, bounded memory, every honest request answered', async () => {
    const { relay, pc, metrics } = need()
    ledger.add(
      {
        area: 'secrets',
        point: 9,
        name: 'no refused HTTP or MQTT secret appears in the gateway log',
      },
      {
        ok: (() => {
          const log = relay.gatewayLog()
          return !secretsRefused.some((s) => log.includes(s) || log.includes(s.slice(0, 16)))
        })(),
      },
    )
    await pc.stop()
    const { lost } = await pc.lost(45_000)
    const runs = await metrics.duplicateRuns()
    const crashes = relay.crashes()
    const n = ledger.count()
    const line = `${String(n)} attacks tried, ${String(crashes.length)} crashes, ${String(lost.length)} lost, ${String(runs.duplicates)} duplicate runs, max RSS growth ${metrics.maxRssGrowthMb.toFixed(1)} MB, max added latency ${metrics.maxAddedLatencyMs().toFixed(0)} ms`
    process.stdout.write(`${line}\n`)
    say(
      `${String(pc.accepted.length)} honest tasks accepted; ${String(runs.orphaned)} re-runs of jobs nobody asked about; per phase: ${metrics.phaseReport()}`,
    )
    for (const c of crashes)
      say(`crash: ${c.entry} exited code ${String(c.code)} signal ${String(c.signal)}`)
    for (const l of lost) say(`lost: ${l}`)
    for (const d of runs.details) say(`run twice: ${d}`)
    for (const f of pc.failures.slice(0, 20)) say(`honest request failed: ${f}`)
    const failed = ledger.failures()
    say(
      `${String(n - failed.length)}/${String(n)} cases held; points covered: ${[...ledger.pointsCovered()].sort().join(',')}`,
    )
    if (AREAS.length === 0) {
      expect(n).toBeGreaterThanOrEqual(150)
      expect([...ledger.pointsCovered()].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    }
    expect({
      crashes: crashes.length,
      lost: lost.length,
      duplicateRuns: runs.duplicates,
      honestUnanswered: pc.failures.length,
    }).toEqual({ crashes: 0, lost: 0, duplicateRuns: 0, honestUnanswered: 0 })
    expect(metrics.maxRssGrowthMb).toBeLessThanOrEqual(MAX_RSS_GROWTH_MB)
    expect(ledger.describe('secrets')).toBe('')
  }, 90_000)
})
