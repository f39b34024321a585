/**
 * Child processes for the chaos run and the abuse suite, without test-framework hooks (the run is
 * also a script): a component's main.ts under tsx, killed for real with SIGKILL. A process that
 * exits while nobody asked it to is counted (`unexpectedExits`): that is a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

const ROOT = join(import.meta.dirname, '..', '..')

export interface ProcExit {
  readonly entry: string
  readonly code: number | null
  readonly signal: string | null
  /** The last output before the exit, for the failure message. */
  readonly tail: string
}

export class Proc {
  readonly #entry: string
  readonly #env: Record<string, string>
  readonly #ready: string
  #child: ChildProcess | undefined
  #output = ''
  #stopping = false
  readonly #crashes: ProcExit[] = []
  readonly #listeners = new Set<(text: string) => void>()

  constructor(entry: string, env: Record<string, string>, readyMessage: string) {
    this.#entry = entry
    this.#env = env
    this.#ready = readyMessage
  }

  get running(): boolean {
    return (
      this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
    )
  }

  /** The running child's pid (for /proc/<pid>/status), or null. */
  get pid(): number | null {
    return this.running ? (this.#child?.pid ?? null) : null
  }

  /** Exits nobody asked for (not through kill9 or stop), since this Proc was made. */
  get unexpectedExits(): readonly ProcExit[] {
    return this.#crashes
  }

  /** Every chunk of output from now on (stdout and stderr); returns the unsubscribe. */
  onOutput(listener: (text: string) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * Start and resolve once the process logs its ready message. `extraEnv` is added for this start
   * only (a preloaded library, a clock offset).
   */
  async start(timeoutMs = 20_000, extraEnv: Record<string, string> = {}): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, this.#entry)], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'info', ...this.#env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#child = child
    this.#stopping = false
    const state = { seen: false }
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString()
      this.#output = (this.#output + text).slice(-20_000)
      if (text.includes(`"msg":"${this.#ready}"`)) state.seen = true
      for (const listener of this.#listeners) listener(text)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code, signal) => {
      if (this.#stopping || this.#child !== child) return
      this.#crashes.push({ entry: this.#entry, code, signal, tail: this.#output.slice(-4_000) })
    })
    const deadline = Date.now() + timeoutMs
    while (!state.seen) {
      if (!this.running) throw new Error(`${this.#entry} exited while starting:\n${this.#output}`)
      if (Date.now() > deadline) throw new Error(`${this.#entry} did not start:\n${this.#output}`)
      await delay(20)
    }
  }

  async kill9(): Promise<void> {
    const child = this.#child
    if (!child || !this.running) return
    this.#stopping = true
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  async stop(): Promise<void> {
    const child = this.#child
    if (!child || !this.running) return
    this.#stopping = true
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await Promise.race([exited, delay(5_000)])
    await this.kill9()
  }

  output(): string {
    return this.#output
  }
}

export { freePort } from '../helpers/free-port.js'
