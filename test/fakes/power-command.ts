/**
 * A fake POWER_ON_COMMAND / POWER_OFF_COMMAND: it tells the test what it was asked by appending
 * one JSON line (`{action, gpuId, reason, requestId, pid}`) to a file the test watches; the test then
 * starts (or stops) the fake GPU and its bridge, as a cloud machine would come up a while later.
 * With `hang` it never exits (a command that hangs: the gateway's timeout must kill it).
 *
 *   node --import tsx test/fakes/power-command.ts <signal-file> [exit-code | hang]
 */
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(import.meta.dirname, '..', '..')

/** The shell command line that runs this fake (for POWER_ON_COMMAND). */
export function fakePowerCommand(signalFile: string, mode: 'ok' | 'hang' | number = 'ok'): string {
  const self = fileURLToPath(import.meta.url)
  const arg = mode === 'ok' ? '0' : String(mode)
  // From the repository, where `--import tsx` resolves.
  const run = [process.execPath, '--import', 'tsx', self, signalFile, arg].map(quote).join(' ')
  return `cd ${quote(ROOT)} && exec ${run}`
}

function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`
}

function main(): void {
  const [file, mode = '0'] = process.argv.slice(2)
  if (file === undefined) throw new Error('usage: power-command.ts <signal-file> [code | hang]')
  const line = {
    action: process.env.RELAY_POWER_ACTION ?? null,
    gpuId: process.env.RELAY_GPU_ID ?? null,
    reason: process.env.RELAY_POWER_REASON ?? null,
    requestId: process.env.RELAY_POWER_REQUEST_ID ?? null,
    pid: process.pid,
  }
  appendFileSync(file, `${JSON.stringify(line)}\n`)
  if (mode === 'hang') {
    setInterval(() => undefined, 60_000)
    return
  }
  process.exitCode = Number(mode)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
