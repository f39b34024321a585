/**
 * The chaos run's faults of the gateway's surroundings (docs/design.md §3.9): its data disk filling and
 * emptying (a tmpfs, needs root), its wall clock stepped (libfaketime) and an MQTT reader that
 * stops reading while messages flow. Each is set up before the gateway starts (`env` is for its
 * process); one that cannot run here is skipped with a clear reason, or fails under `CI=true`.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { md5Buffer } from '../../lib/hash.js'
import { requestJson, uploadMultipart } from '../../lib/http-client.js'
import { wavBytes } from './media.js'
import { mountSmallDisk, smallDiskUnavailable, type SmallDisk } from './disk-fill.js'
import {
  FAKETIME_SEEN_WITHIN_MS,
  libfaketimePath,
  steppedClock,
  type SteppedClock,
} from './faketime.js'
import { noiseWithProbe, stalledReader } from './stalled-reader.js'

export const SURROUNDING_FAULTS = ['fill-disk', 'step-clock', 'stall-reader'] as const
export type SurroundingFault = (typeof SURROUNDING_FAULTS)[number]

/** The gateway refuses uploads and submits below this much free space (agreed: DISK_FULL, 507). */
const DISK_MIN_FREE_BYTES = 8 * 1024 * 1024
const DISK_BYTES = 64 * 1024 * 1024
const DAY_S = 24 * 60 * 60
/** Steps as NTP or a resumed VM make them: past the execution timeout, past the queue TTL, … */
const CLOCK_STEPS_S = [31 * 60, 25 * 60 * 60, -60 * 60, -25 * 60 * 60, 8 * DAY_S, -2 * DAY_S]

export interface SurroundingStats {
  /** Bytes written by the fill file, at most, in one fill. */
  diskFilledBytes: number
  /** Fills that left nothing at all (writes fail with ENOSPC), and fills below the minimum. */
  fullFills: number
  lowFills: number
  /**
   * While the disk was full: uploads answered 507 DISK_FULL (as agreed), and what else they got
   * (`status code`, or `no answer` within 10 s); the queue answered 200 every time, or not.
   */
  uploadsRefusedDiskFull: number
  uploadsOtherwise: string[]
  queueAnswered: number
  queueNotAnswered: number
  /** The gateway's clock offset after the last step, and the largest one, in seconds. */
  clockOffsetS: number
  maxClockOffsetS: number
  /** Stalled readers the broker cut off, of those stalled. */
  readersCut: number
  readersStalled: number
  /** Noise that flowed to the stalled readers, and the slowest probe of another client meanwhile. */
  noiseBytes: number
  maxProbeMs: number
}

export interface SurroundingFaults {
  /** The kinds that can run here (others were skipped). */
  readonly kinds: readonly SurroundingFault[]
  /** Why a kind was skipped, for the report. */
  readonly skipped: readonly string[]
  /** For the gateway's process. */
  readonly env: Record<string, string>
  readonly stats: SurroundingStats
  inject(kind: SurroundingFault, random: () => number, hooks: FaultHooks): Promise<void>
  /** After the gateway stopped: give the disk back. */
  close(): Promise<void>
}

export interface FaultHooks {
  /** Cut the bridge's MQTT link (it reconnects at once, with its will). */
  readonly cutBridgeLink: () => void
  readonly httpUrl: string
  readonly httpHeaders: Record<string, string>
  readonly mqttPort: number
  readonly mqttUrl: string
}

function skipOrFail(kind: SurroundingFault, reason: string, skipped: string[]): void {
  const text = `chaos fault ${kind} skipped: ${reason}`
  if (process.env.CI === 'true') throw new Error(`${text} (CI=true: it must run)`)
  skipped.push(text)
}

export async function surroundingFaults(opts: {
  readonly wanted: readonly SurroundingFault[]
  readonly dir: string
  /** The gateway's DATA_DIR: the small disk is mounted over it. */
  readonly gatewayDataDir: string
  readonly gatewaySecret: string
  readonly adminSecret: string
}): Promise<SurroundingFaults> {
  const skipped: string[] = []
  const kinds: SurroundingFault[] = []
  const env: Record<string, string> = {
    GATEWAY_MQTT_SECRET: opts.gatewaySecret,
    MQTT_ADMIN_SECRET: opts.adminSecret,
  }
  let disk: SmallDisk | null = null
  let clock: SteppedClock | null = null
  // The clock first: it may fail (under CI) before anything is mounted.
  if (opts.wanted.includes('step-clock')) {
    const lib = libfaketimePath()
    if (lib === null) {
      skipOrFail('step-clock', 'libfaketime.so.1 not found (apt-get install faketime)', skipped)
    } else {
      clock = await steppedClock(lib, join(opts.dir, 'gateway-faketime.rc'))
      Object.assign(env, clock.env)
      kinds.push('step-clock')
    }
  }
  if (opts.wanted.includes('fill-disk')) {
    const why = smallDiskUnavailable()
    if (why !== null) skipOrFail('fill-disk', why, skipped)
    else {
      disk = await mountSmallDisk(opts.gatewayDataDir, DISK_BYTES)
      env.DISK_MIN_FREE_BYTES = String(DISK_MIN_FREE_BYTES)
      kinds.push('fill-disk')
    }
  }
  if (opts.wanted.includes('stall-reader')) kinds.push('stall-reader')

  const stats: SurroundingStats = {
    diskFilledBytes: 0,
    fullFills: 0,
    lowFills: 0,
    uploadsRefusedDiskFull: 0,
    uploadsOtherwise: [],
    queueAnswered: 0,
    queueNotAnswered: 0,
    clockOffsetS: 0,
    maxClockOffsetS: 0,
    readersCut: 0,
    readersStalled: 0,
    noiseBytes: 0,
    maxProbeMs: 0,
  }
  let readers = 0
  const steps: number[] = []

  const fillDisk = async (d: SmallDisk, random: () => number, hooks: FaultHooks) => {
    const full = random() < 0.6
    try {
      const written = await d.fill(full ? 0 : DISK_MIN_FREE_BYTES / 2)
      stats.diskFilledBytes = Math.max(stats.diskFilledBytes, written)
      if (full) stats.fullFills++
      else stats.lowFills++
      // The crash this fault was made for: a reconnect with a Last Will while the disk is full.
      if (random() < 0.5) hooks.cutBridgeLink()
      await probeFullDisk(hooks)
      await delay(random() * 1_500)
    } finally {
      await d.empty()
    }
  }

  /**
   * Uploads are refused with DISK_FULL (each answered within 10 s), once the gateway has seen the
   * disk full: it may read its free space only every so often, so an upload accepted meanwhile is
   * tried again, for up to 5 s. The queue is still answered.
   */
  const probeFullDisk = async (hooks: FaultHooks) => {
    const until = performance.now() + 5_000
    for (;;) {
      const bytes = wavBytes(`disk-probe-${randomUUID()}`, 2048)
      const upload = await uploadMultipart({
        url: `${hooks.httpUrl}/api/heygem/upload_file`,
        source: Readable.from([bytes]),
        size: bytes.length,
        fields: { hash: md5Buffer(bytes), ext: '.wav' },
        fileField: 'file',
        filename: 'probe.wav',
        headers: hooks.httpHeaders,
        timeoutMs: 10_000,
      }).catch(() => null)
      const error = errorCodeOf(upload?.body)
      if (upload?.status === 507 && error === 'DISK_FULL') {
        stats.uploadsRefusedDiskFull++
        break
      }
      if (upload?.status !== 200 || performance.now() > until) {
        stats.uploadsOtherwise.push(
          upload === null
            ? 'no answer within 10 s'
            : upload.status === 200
              ? 'still accepted after 5 s'
              : `${String(upload.status)} ${error}`,
        )
        break
      }
      await delay(250)
    }
    const queue = await requestJson(`${hooks.httpUrl}/api/heygem/queue`, {
      headers: hooks.httpHeaders,
      timeoutMs: 10_000,
    }).catch(() => null)
    if (queue?.status === 200) stats.queueAnswered++
    else stats.queueNotAnswered++
  }

  const stepClock = async (c: SteppedClock, random: () => number) => {
    // Each step once per round, in a random order (the first round starts with a big one).
    if (steps.length === 0) steps.push(...shuffleSteps(random))
    const step = steps.pop() ?? 31 * 60
    // A walk that stays within ten days of the real clock.
    let next = c.offsetS() + step
    if (Math.abs(next) > 10 * DAY_S) next = c.offsetS() - step
    await c.set(next)
    stats.clockOffsetS = next
    stats.maxClockOffsetS = Math.max(stats.maxClockOffsetS, Math.abs(next))
    await delay(FAKETIME_SEEN_WITHIN_MS)
  }

  const stallReader = async (random: () => number, hooks: FaultHooks) => {
    readers++
    const reader = await stalledReader({
      port: hooks.mqttPort,
      clientId: `chaos-stalled-reader-${String(readers)}`,
      username: 'admin',
      password: opts.adminSecret,
      filter: 'relay/#',
    })
    stats.readersStalled++
    try {
      const noise = await noiseWithProbe({
        url: hooks.mqttUrl,
        clientId: `chaos-noise-${String(readers)}`,
        username: 'gateway',
        password: opts.gatewaySecret,
        noiseTopic: 'relay/chaos/noise',
        probeTopic: `relay/chaos/probe/${String(readers)}`,
        // Longer than the kernel's buffers take (~1 s here) plus the broker's 2 s grace for a
        // reader over its outgoing limit: a stalled reader is cut while the noise still flows.
        forMs: 4_500 + random() * 2_000,
        chunkBytes: 64 * 1024,
      })
      stats.noiseBytes += noise.bytes
      stats.maxProbeMs = Math.max(stats.maxProbeMs, noise.maxProbeMs)
      if (await reader.wasCut(2_000)) stats.readersCut++
    } finally {
      reader.close()
    }
  }

  return {
    kinds,
    skipped,
    env,
    stats,
    async inject(kind, random, hooks) {
      switch (kind) {
        case 'fill-disk':
          if (disk) await fillDisk(disk, random, hooks)
          break
        case 'step-clock':
          if (clock) await stepClock(clock, random)
          break
        case 'stall-reader':
          await stallReader(random, hooks)
          break
      }
    },
    async close() {
      if (disk) {
        await disk.empty()
        await disk.unmount()
      }
    },
  }
}

/** A copy of `items` in a random order (Fisher–Yates, with the run's seeded PRNG). */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const a = out[i]
    const b = out[j]
    if (a !== undefined && b !== undefined) {
      out[i] = b
      out[j] = a
    }
  }
  return out
}

function shuffleSteps(random: () => number): number[] {
  const rest = shuffled(
    CLOCK_STEPS_S.filter((_, i) => i !== 1),
    random,
  )
  // Popped from the end: the queue TTL's step (25 h) comes first.
  return [...rest, CLOCK_STEPS_S[1] ?? DAY_S]
}

function errorCodeOf(body: unknown): string {
  if (typeof body !== 'object' || body === null || !('data' in body)) return '-'
  const data = body.data
  if (typeof data !== 'object' || data === null || !('error' in data)) return '-'
  return String(data.error)
}
