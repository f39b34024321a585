/**
 * What the abuse suite measures across its phases: the gateway's RSS growth while an attack runs
 * (from /proc/<pid>/status, sampled every 100 ms), the honest PC's added latency (p95 of its
 * requests during a phase minus the p95 of a quiet baseline), and duplicate runs from the fake
 * GPU's own record of the jobs it ran.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { p95, type HonestPc } from './honest-pc.js'
import type { AbuseRelay } from './relay-procs.js'

/**
 * Peak RSS growth allowed during one attack. V8 frees the Buffers a socket reads into only at a
 * GC, and it forces one for external memory only after about 64 MB of it has piled up: a flood
 * of bodies that are read and dropped (2,000 × 64 kB) peaks at 40–60 MB with 50 of them alive at
 * a time (a plain Node script that keeps 50 such Buffers alive shows the same). What a leak would
 * keep of the body floods here (2,000 × 64 kB, 1,000 × 1 MB) is 125 MB and more.
 */
export const MAX_RSS_GROWTH_MB = 100

interface PhaseWindow {
  readonly name: string
  readonly from: number
  readonly to: number
  /** The phase restarts processes on purpose: its latencies say nothing about attacks. */
  readonly outages: boolean
}

export class Metrics {
  readonly #relay: AbuseRelay
  readonly #pc: HonestPc
  readonly #phases: PhaseWindow[] = []
  baselineP95 = 0
  maxRssGrowthMb = 0
  readonly #rss: string[] = []

  constructor(relay: AbuseRelay, pc: HonestPc) {
    this.#relay = relay
    this.#pc = pc
  }

  async baseline(ms: number): Promise<void> {
    const from = Date.now()
    await delay(ms)
    this.baselineP95 = p95(this.#pc.latencies(from, Date.now()))
  }

  async phase<T>(
    name: string,
    fn: () => Promise<T>,
    options: { outages?: boolean } = {},
  ): Promise<T> {
    const from = Date.now()
    try {
      return await fn()
    } finally {
      this.#phases.push({ name, from, to: Date.now(), outages: options.outages ?? false })
    }
  }

  /** Run `fn`, sampling RSS; throws (after `fn`) if the gateway grew by more than 50 MB. */
  async measureRss<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const start = (await this.#relay.gatewayRssMb()) ?? 0
    let max = start
    const sampling = { on: true }
    const sampler = (async () => {
      while (sampling.on) {
        const now = await this.#relay.gatewayRssMb()
        if (now !== null) max = Math.max(max, now)
        await delay(100)
      }
    })()
    try {
      return await fn()
    } finally {
      await delay(300)
      sampling.on = false
      await sampler
      const growth = max - start
      this.#rss.push(`${what} +${growth.toFixed(1)} MB`)
      this.maxRssGrowthMb = Math.max(this.maxRssGrowthMb, growth)
      if (growth > MAX_RSS_GROWTH_MB) {
        // eslint-disable-next-line no-unsafe-finally -- the case fails on memory even if fn passed
        throw new Error(
          `${what}: gateway RSS grew ${growth.toFixed(1)} MB (${start.toFixed(0)} → ${max.toFixed(0)})`,
        )
      }
    }
  }

  maxAddedLatencyMs(): number {
    let max = 0
    for (const p of this.#phases) {
      if (p.outages) continue
      const samples = this.#pc.latencies(p.from, p.to)
      if (samples.length > 0) max = Math.max(max, p95(samples) - this.baselineP95)
    }
    return max
  }

  phaseReport(): string {
    const parts = this.#phases.map((p) => {
      const samples = this.#pc.latencies(p.from, p.to)
      return `${p.name} ${((p.to - p.from) / 1000).toFixed(0)} s, honest p95 ${p95(samples).toFixed(0)} ms over ${String(samples.length)}${p.outages ? ' (restarts)' : ''}`
    })
    return `${parts.join('; ')}; RSS: ${this.#rss.join(', ')}`
  }

  /**
   * Jobs the fake GPU ran more than once for the same inputs (each task has its own audio), less
   * those nobody ever asked about (sent by a bridge killed before it read the answer: the relay
   * cannot know they started). Cache hits ran nothing.
   */
  async duplicateRuns(): Promise<{ duplicates: number; orphaned: number; details: string[] }> {
    const stats = await this.#relay.gpuStats()
    const asked = new Set(stats.asked)
    const perAudio = new Map<string, { runs: number; excused: number }>()
    let orphaned = 0
    for (const s of stats.submissions) {
      if (s.cached) continue
      const entry = perAudio.get(s.audioHash) ?? { runs: 0, excused: 0 }
      entry.runs++
      if (!asked.has(s.taskId)) {
        entry.excused++
        orphaned++
      }
      perAudio.set(s.audioHash, entry)
    }
    let duplicates = 0
    const details: string[] = []
    for (const [audio, e] of perAudio) {
      const extra = Math.max(0, e.runs - 1 - e.excused)
      if (extra > 0) details.push(`audio ${audio}: ${String(e.runs)} runs`)
      duplicates += extra
    }
    return { duplicates, orphaned, details }
  }
}
