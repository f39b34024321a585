import { describe, expect, it } from 'vitest'
import { runChaos } from '../chaos/chaos-run.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('the chaos run', () => {
  it('loses nothing, runs nothing twice and leaves nothing stuck while processes are killed, links cut and the GPU restarted', async () => {
    const dir = await tempDir('chaos')
    const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000)
    const report = await runChaos({
      dir,
      tasks: 200,
      faultEveryMs: 1_500,
      jobMs: 30,
      seed,
      settleTimeoutMs: 90_000,
    })
    process.stdout.write(
      `chaos (seed ${String(seed)}): ${report.line} ${JSON.stringify(report.faults)}\n`,
    )
    for (const detail of report.details) process.stdout.write(`  ${detail}\n`)
    expect(report.faultsTotal).toBeGreaterThanOrEqual(8)
    expect({ lost: report.lost, duplicateRuns: report.duplicateRuns, stuck: report.stuck }).toEqual(
      {
        lost: 0,
        duplicateRuns: 0,
        stuck: 0,
      },
    )
  }, 300_000)
})
