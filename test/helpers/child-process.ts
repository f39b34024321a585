/**
 * Real processes for crash tests: a component's main.ts run under tsx in a child process, killed
 * with a real SIGKILL. Output is kept for the failure message; a JSON log line can be awaited.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { errorMessage } from '../../lib/errors.js'
import { TEST_SECRETS } from './relay.js'
import { waitFor } from './wait-for.js'

const ROOT = join(import.meta.dirname, '..', '..')

/** The test logins (helpers/relay.ts) as the environment of a child gateway or broker. */
const TEST_CREDENTIAL_ENV = {
  GATEWAY_MQTT_SECRET: TEST_SECRETS.gateway,
  MQTT_ADMIN_SECRET: TEST_SECRETS.admin,
  GPU_SECRETS: `gpu-1:${TEST_SECRETS.gpu}`,
}

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
    ...TEST_CREDENTIAL_ENV,
    ...env,
  })
  const line = await child.waitForLine((l) => l.msg === 'broker listening', 'broker listening')
  return { child, url: String(line.url) }
}

export interface ChildGateway {
  readonly child: ChildHandle
  readonly url: string
  readonly mqttUrl: string
}

/** `gateway/main.ts` (embedded broker) in a child process, on the given ports and data folder. */
export async function startChildGateway(
  dataDir: string,
  ports: { http: number; mqtt: number },
  env: Record<string, string> = {},
): Promise<ChildGateway> {
  const child = startChild('gateway/main.ts', {
    DATA_DIR: dataDir,
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(ports.http),
    BROKER_HOST: '127.0.0.1',
    BROKER_PORT: String(ports.mqtt),
    BROKER_WS_PORT: 'off',
    ...TEST_CREDENTIAL_ENV,
    ...env,
  })
  await child.waitForLine((l) => l.msg === 'gateway listening', 'gateway listening')
  return {
    child,
    url: `http://127.0.0.1:${String(ports.http)}`,
    mqttUrl: `mqtt://127.0.0.1:${String(ports.mqtt)}`,
  }
}

/** `gpu-bridge/main.ts` in a child process. */
export async function startChildBridge(env: Record<string, string>): Promise<ChildHandle> {
  const child = startChild('gpu-bridge/main.ts', {
    BRIDGE_GPU_ID: 'gpu-1',
    BRIDGE_SECRET: TEST_SECRETS.gpu,
    BRIDGE_POLL_MS: '100',
    BRIDGE_HEARTBEAT_MS: '1000',
    BRIDGE_PROGRESS_INTERVAL_MS: '200',
    BRIDGE_CLAIM_RETRY_MS: '2000',
    BRIDGE_RESEND_MS: '1000',
    MQTT_KEEPALIVE_S: '5',
    ...env,
  })
  await child.waitForLine((l) => l.msg === 'connected', 'bridge connected')
  return child
}

export { freePort } from './free-port.js'
