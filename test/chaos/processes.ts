/**
 * Child processes for the chaos run, without test-framework hooks (the run is also a script):
 * a component's main.ts under tsx, killed for real with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

const ROOT = join(import.meta.dirname, '..', '..')

export class Proc {
  readonly #entry: string
  readonly #env: Record<string, string>
  readonly #ready: string
  #child: ChildProcess | undefined
  #output = ''

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

  /** Start and resolve once the process logs its ready message. */
  async start(timeoutMs = 20_000): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, this.#entry)], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'info', ...this.#env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#child = child
    const state = { seen: false }
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString()
      this.#output = (this.#output + text).slice(-20_000)
      if (text.includes(`"msg":"${this.#ready}"`)) state.seen = true
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
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
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  async stop(): Promise<void> {
    const child = this.#child
    if (!child || !this.running) return
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
