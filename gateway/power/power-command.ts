/**
 * Runs a power command (`POWER_ON_COMMAND` / `POWER_OFF_COMMAND`) with `sh -c`, the request in its
 * environment. Its output is not read (it may hold the cloud provider's secrets): only the exit
 * code, the signal or the timeout is recorded. A command still running at the timeout is killed
 * with its whole process group (a script's children too).
 */
import { spawn } from 'node:child_process'

export interface PowerCommandRequest {
  readonly command: string
  readonly gpuId: string
  readonly action: string
  readonly reason: string
  readonly requestId: string
  readonly timeoutMs: number
}

export type CommandResult =
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'signal'; readonly signal: string }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'spawn-failed'; readonly error: string }

export interface RunningCommand {
  readonly done: Promise<CommandResult>
  /** Kill it now (gateway shutdown). */
  kill(): void
}

/**
 * The relay's own secrets, which a power script (and every cloud tool it runs) has no business
 * with; the rest of the environment (PATH, the provider's credentials) is passed on.
 */
export const RELAY_SECRET_VARIABLES: readonly string[] = [
  'API_SECRET',
  'ADMIN_TOKEN',
  'METRICS_TOKEN',
  'WEBHOOK_SECRET',
  'GPU_SECRETS',
  'GATEWAY_MQTT_SECRET',
  'MQTT_ADMIN_SECRET',
]

function withoutRelaySecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env }
  for (const name of RELAY_SECRET_VARIABLES) Reflect.deleteProperty(copy, name)
  return copy
}

export function runPowerCommand(r: PowerCommandRequest): RunningCommand {
  const child = spawn('sh', ['-c', r.command], {
    detached: true, // its own process group, so a timeout kills its children too
    stdio: 'ignore',
    env: {
      ...withoutRelaySecrets(process.env),
      RELAY_GPU_ID: r.gpuId,
      RELAY_POWER_ACTION: r.action,
      RELAY_POWER_REASON: r.reason,
      RELAY_POWER_REQUEST_ID: r.requestId,
    },
  })
  let timedOut = false
  const killGroup = (): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  const timer = setTimeout(() => {
    timedOut = true
    killGroup()
  }, r.timeoutMs)
  const done = new Promise<CommandResult>((resolve) => {
    child.once('error', (err) => {
      clearTimeout(timer)
      resolve({ kind: 'spawn-failed', error: err.message })
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (timedOut) resolve({ kind: 'timeout' })
      else if (code !== null) resolve({ kind: 'exit', code })
      else resolve({ kind: 'signal', signal: signal ?? 'unknown' })
    })
  })
  return {
    done,
    kill() {
      clearTimeout(timer)
      killGroup()
    },
  }
}

/** The words the request's record keeps. */
export function describeCommand(result: CommandResult): string {
  switch (result.kind) {
    case 'exit':
      return `command: exit ${String(result.code)}`
    case 'signal':
      return `command: killed by ${result.signal}`
    case 'timeout':
      return 'command: timed out (killed)'
    case 'spawn-failed':
      return `command: not started (${result.error})`
  }
}
