/**
 * `npm run chaos`: the chaos run at length, for people. CHAOS_TASKS (default 1000),
 * CHAOS_FAULT_EVERY_MS (default 1500), CHAOS_JOB_MS (default 50), CHAOS_SEED (default random).
 * Prints one line and exits 1 unless lost, duplicate runs and stuck are all 0.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runChaos } from '../test/chaos/chaos-run.js'

const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 1_000_000))
const dir = await mkdtemp(join(tmpdir(), 'gpu-relay-chaos-'))
try {
  const report = await runChaos({
    dir,
    tasks: Number(process.env.CHAOS_TASKS ?? 1000),
    faultEveryMs: Number(process.env.CHAOS_FAULT_EVERY_MS ?? 1500),
    jobMs: Number(process.env.CHAOS_JOB_MS ?? 50),
    seed,
    settleTimeoutMs: 180_000,
    say: (line) => process.stderr.write(`  ${line}\n`),
  })
  process.stdout.write(
    `${report.line}   (seed ${String(seed)}; ${JSON.stringify(report.faults)})\n`,
  )
  for (const detail of report.details) process.stdout.write(`  ${detail}\n`)
  process.exitCode = report.lost + report.duplicateRuns + report.stuck === 0 ? 0 : 1
} finally {
  await rm(dir, { recursive: true, force: true })
}
