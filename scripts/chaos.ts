/**
 * `npm run chaos`: the chaos run at length, for people. CHAOS_TASKS (default 1000),
 * CHAOS_FAULT_EVERY_MS (default 1500), CHAOS_JOB_MS (default 50), CHAOS_SEED (default random),
 * CHAOS_FAULTS (default all: kill-bridge, kill-gateway, cut-link, restart-gpu, fill-disk,
 * step-clock, stall-reader; fill-disk needs root for its tmpfs, step-clock needs libfaketime).
 * Prints one line and exits 1 unless lost, duplicate runs, stuck and crashes are all 0.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { faultKindsOf, runChaos } from '../test/chaos/chaos-run.js'

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
    faults: faultKindsOf(process.env.CHAOS_FAULTS),
    say: (line) => process.stderr.write(`  ${line}\n`),
  })
  process.stdout.write(
    `${report.line}   (seed ${String(seed)}; ${JSON.stringify(report.faults)})\n`,
  )
  for (const line of report.skipped) process.stdout.write(`  ${line}\n`)
  for (const detail of report.details) process.stdout.write(`  ${detail}\n`)
  const bad = report.lost + report.duplicateRuns + report.stuck + report.crashes
  process.exitCode = bad === 0 ? 0 : 1
} finally {
  await rm(dir, { recursive: true, force: true })
}
