/**
 * Real processes for crash tests: a component's main.ts run under tsx in a child process, killed
 * with a real SIGKILL. Output is kept for the failure message; a JSON log line can be awaited.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { errorMessage } from '../../lib/errors.js'
import { waitFor } from './wait-for.js'

const ROOT = join(import.meta.dirname, '..', '..')

export interface ChildHandle {
  readonly process: ChildProcess
  /** Every JSON log line so far. */
  readonly lines: () => Record<string, unknown>[]
  /** Resolve with the first log line for which `match` is true. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>
  kill9(): Promise<void>
  stop(): Promise<void>
}

export function startChild(entry: string, env: Record<string, string>): ChildHandle {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, entry)], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const parsed: Record<string, unknown>[] = []
  let raw = ''
  let partial = ''
  child.stdout.on('data', (chunk: Buffer) => {
    partial += chunk.toString()
    const lines = partial.split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      raw += `${line}\n`
      try {
        const value: unknown = JSON.parse(line)
        if (value && typeof value === 'object') parsed.push(value as Record<string, unknown>)
      } catch {
        // not a log line
      }
    }
  })
  child.stderr.on('data', (chunk: Buffer) => (raw += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const handle: ChildHandle = {
    process: child,
    lines: () => parsed,
    async waitForLine(match, what, timeoutMs = 15_000) {
      try {
        return await waitFor(() => parsed.find(match), { what, timeoutMs })
      } catch (err) {
        throw new Error(`${errorMessage(err)}\n--- ${entry} output ---\n${raw.slice(-4000)}`, {
          cause: err,
        })
      }
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))])
      await handle.kill9()
    },
  }
  onTestFinished(() => handle.stop())
  return handle
}

/** Start `broker/main.ts` and resolve once it listens, with its MQTT URL. */
export async function startChildBroker(
  env: Record<string, string>,
): Promise<{ child: ChildHandle; url: string }> {
  const child = startChild('broker/main.ts', {
    BROKER_HOST: '127.0.0.1',
    BROKER_WS_PORT: 'off',
    ...env,
  })
  const line = await child.waitForLine((l) => l.msg === 'broker listening', 'broker listening')
  return { child, url: String(line.url) }
}
