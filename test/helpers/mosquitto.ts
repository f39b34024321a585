/**
 * A real Mosquitto 2 (Debian's `mosquitto`) for a test: `mosquitto -c <conf>` with the files
 * `npm run mosquitto-config` writes (scripts/mosquitto-config.ts), on a free port in a temp
 * folder, stopped when the test ends. Missing, a test skips with a clear message; under `CI=true`
 * (`.ci/run` installs it) it fails instead (system-deps.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { writeMosquittoFiles } from '../../scripts/mosquitto-config.js'
import type { Credentials } from '../../lib/credentials.js'
import { DEFAULT_TOPIC_ROOT } from '../../protocol/index.js'
import { freePort } from './free-port.js'
import { unmet } from './system-deps.js'
import { waitFor } from './wait-for.js'

const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto']

/** The mosquitto binary, or null when the package is not installed. */
export function mosquittoBinary(): string | null {
  return CANDIDATES.find((path) => existsSync(path)) ?? null
}

/**
 * Why Mosquitto tests cannot run here, or null. Under CI this throws (the test fails with the
 * reason); elsewhere `describe.skipIf(mosquittoMissing())` skips with it.
 */
export function mosquittoMissing(): string | null {
  return unmet(
    mosquittoBinary() === null
      ? 'mosquitto is not installed (apt-get install mosquitto): Mosquitto tests skipped'
      : null,
  )
}

export interface TestMosquitto {
  readonly url: string
  readonly port: number
  /** Everything Mosquitto wrote to stderr (its log). */
  readonly log: () => string
  /** Stop (SIGTERM: it saves its database) and wait for the exit. */
  stop(): Promise<void>
  /** Start again on the same port and data, with new credentials if given (a fixed password). */
  restart(credentials?: Credentials): Promise<void>
}

export interface TestMosquittoOptions {
  readonly dir: string
  readonly credentials: Credentials
  readonly topicRoot?: string
}

export async function startTestMosquitto(options: TestMosquittoOptions): Promise<TestMosquitto> {
  const binary = mosquittoBinary()
  if (binary === null) {
    throw new Error('mosquitto is not installed (apt-get install mosquitto)')
  }
  const port = await freePort()
  const outDir = join(options.dir, 'mosquitto')
  const write = (credentials: Credentials): Promise<unknown> =>
    writeMosquittoFiles({
      credentials,
      topicRoot: options.topicRoot ?? DEFAULT_TOPIC_ROOT,
      host: '127.0.0.1',
      port,
      wsPort: null,
      dataDir: join(outDir, 'data'),
      outDir,
      maxPayloadBytes: 256 * 1024,
      // As root Mosquitto would switch to the `mosquitto` user, who cannot read a 0700 temp folder.
      ...(process.getuid?.() === 0 ? { runAs: 'root' } : {}),
    })
  await write(options.credentials)
  let output = ''
  let child: ChildProcess | null = null

  const start = async (): Promise<void> => {
    const started = spawn(binary, ['-c', join(outDir, 'mosquitto.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    child = started
    const exited = new Promise<number | null>((resolve) => started.once('exit', resolve))
    started.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const running = waitFor(() => output.includes(`listen socket on port ${String(port)}`), {
      what: 'mosquitto listening',
      timeoutMs: 10_000,
    })
    const outcome = await Promise.race([running.then(() => 'up' as const), exited])
    if (outcome !== 'up') {
      throw new Error(`mosquitto exited (${String(outcome)}):\n${output.slice(-2000)}`)
    }
  }

  const stop = async (): Promise<void> => {
    const running = child
    child = null
    if (running === null || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()))
    running.kill('SIGTERM')
    const timer = setTimeout(() => running.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }

  await start()
  onTestFinished(() => stop())
  return {
    url: `mqtt://127.0.0.1:${String(port)}`,
    port,
    log: () => output,
    stop,
    async restart(credentials) {
      await stop()
      if (credentials) await write(credentials)
      await start()
    },
  }
}
