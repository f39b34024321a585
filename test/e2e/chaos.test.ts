import { describe, expect, it } from 'vitest'
import { faultKindsOf, runChaos } from '../chaos/chaos-run.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('the chaos run', () => {
  it('loses nothing, runs nothing twice and leaves nothing stuck while processes are killed, links cut, the GPU restarted, the disk filled, the clock stepped and a reader stalls', async () => {
    const dir = await tempDir('chaos')
    const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000)
    const report = await runChaos({
      dir,
      tasks: 200,
      faultEveryMs: 1_500,
      jobMs: 30,
      seed,
      settleTimeoutMs: 90_000,
      faults: faultKindsOf(process.env.CHAOS_FAULTS),
    })
    for (const line of report.skipped) process.stdout.write(`${line}\n`)
    process.stdout.write(
      `chaos (seed ${String(seed)}): ${report.line} ${JSON.stringify(report.faults)}\n`,
    )
    for (const detail of report.details) process.stdout.write(`  ${detail}\n`)
    expect(report.faultsTotal).toBeGreaterThanOrEqual(8)
    expect(report.kinds.filter((kind) => report.faults[kind] === 0)).toEqual([])
    expect({
      lost: report.lost,
      duplicateRuns: report.duplicateRuns,
      stuck: report.stuck,
      crashes: report.crashes,
    }).toEqual({ lost: 0, duplicateRuns: 0, stuck: 0, crashes: 0 })
    // What the gateway's surroundings must not do (docs/design.md §3.9): uploads onto a full disk are answered
    // DISK_FULL (within seconds) while the queue still answers; a reader that stops reading is
    // cut by the broker.
    const s = report.surroundings
    expect({ uploadsOtherwise: s.uploadsOtherwise, queueNotAnswered: s.queueNotAnswered }).toEqual({
      uploadsOtherwise: [],
      queueNotAnswered: 0,
    })
    expect(s.readersCut).toBe(s.readersStalled)
  }, 300_000)
})
