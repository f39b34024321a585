/**
 * The honest PC that keeps working through every attack, from 127.0.0.1 with the right secret: it
 * uploads a fresh audio and submits it (Idempotency-Key, so a retry never makes a second task)
 * whenever fewer than three of its tasks are unfinished, and polls status and progress. Every
 * request is timed; one left unanswered, or answered 5xx/429, is counted, except inside a window
 * the suite opened on purpose (the gateway restarted, the disk full: 507 is then the right answer).
 */
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { md5Buffer } from '../../lib/hash.js'
import { uploadMultipart } from '../../lib/http-client.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { mp4Bytes, wavBytes } from '../helpers/media.js'
import { dataOf, httpCall, type Reply } from './http-raw.js'
import { AUTH, RESULT_SIZE } from './relay-procs.js'

export interface HonestTask {
  readonly id: string
  readonly audio: string
}

interface Sample {
  readonly at: number
  readonly ms: number
}

const FINAL = new Set(['done', 'error', 'cancelled', 'expired'])

export function p95(values: readonly number[]): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? 0
}

export class HonestPc {
  readonly #port: number
  readonly #base: string
  readonly accepted: HonestTask[] = []
  readonly #final = new Map<string, string>()
  readonly #samples: Sample[] = []
  /** Requests left unanswered or wrongly refused outside an excused window. */
  readonly failures: string[] = []
  #excused = 0
  readonly #state = { running: true }
  #paused = false
  #video = ''
  /** The avatar's size in bytes, as the pool records it. */
  videoSize = 0
  #loops: Promise<void>[] = []

  constructor(port: number) {
    this.#port = port
    this.#base = `http://127.0.0.1:${String(port)}`
  }

  get video(): string {
    return this.#video
  }

  /** While `fn` runs, failures are expected (a restart, a full disk) and latencies not counted. */
  async excuse<T>(fn: () => Promise<T>): Promise<T> {
    this.#excused++
    try {
      return await fn()
    } finally {
      // Requests already in flight when the window closes belong to it too.
      await delay(300)
      this.#excused--
    }
  }

  /**
   * While `fn` runs no new task is submitted (polls go on): an operator wiping a GPU's disk first
   * lets it finish what it holds, or its running job would rightly be run again.
   */
  async withoutSubmits<T>(fn: () => Promise<T>): Promise<T> {
    this.#paused = true
    try {
      return await fn()
    } finally {
      this.#paused = false
    }
  }

  #live(): boolean {
    return this.#state.running
  }

  async start(): Promise<void> {
    const video = mp4Bytes('honest-avatar', 8192)
    this.videoSize = video.length
    this.#video = await this.#persist(() => this.#upload(video, '.mp4'))
    this.#loops = [this.#submitter(), this.#poller()]
  }

  async stop(): Promise<void> {
    this.#state.running = false
    await Promise.all(this.#loops)
  }

  /** Latency samples (ms) taken within [from, to). */
  latencies(from: number, to: number): number[] {
    return this.#samples.filter((s) => s.at >= from && s.at < to).map((s) => s.ms)
  }

  unfinished(): number {
    return this.accepted.filter((t) => !FINAL.has(this.#final.get(t.id) ?? '')).length
  }

  async #timed(what: string, call: () => Promise<Reply>): Promise<Reply | null> {
    const excused = this.#excused > 0
    const at = Date.now()
    try {
      const reply = await call()
      const wrong = reply.status === 429 || (reply.status >= 500 && reply.status !== 507)
      if (!excused && this.#excused === 0) {
        if (wrong)
          this.failures.push(`${what}: HTTP ${String(reply.status)} ${reply.text.slice(0, 200)}`)
        else this.#samples.push({ at, ms: reply.ms })
      }
      return reply
    } catch (err) {
      if (!excused && this.#excused === 0) this.failures.push(`${what}: ${String(err)}`)
      return null
    }
  }

  async #persist<T>(step: () => Promise<T | null>): Promise<T> {
    for (;;) {
      const value = await step()
      if (value !== null) return value
      if (!this.#live()) throw new Error('stopped')
      await delay(300)
    }
  }

  async #upload(bytes: Buffer, ext: string): Promise<string | null> {
    const reply = await this.#timed('upload', async () => {
      const started = performance.now()
      const r = await uploadMultipart({
        url: `${this.#base}/api/heygem/upload_file`,
        source: Readable.from([bytes]),
        size: bytes.length,
        fields: { hash: md5Buffer(bytes), ext },
        fileField: 'file',
        filename: `honest${ext}`,
        headers: AUTH,
      })
      const json = typeof r.body === 'object' && r.body !== null ? r.body : {}
      return {
        status: r.status,
        headers: {},
        text: JSON.stringify(r.body),
        json: json as Record<string, unknown>,
        ms: performance.now() - started,
      }
    })
    if (reply?.status !== 200) return null
    const hash = dataOf(reply).hash
    return typeof hash === 'string' ? hash : null
  }

  async #submitter(): Promise<void> {
    for (let i = 0; this.#live(); i++) {
      while (this.#live() && (this.#paused || this.unfinished() >= 3)) await delay(100)
      if (!this.#live()) return
      const audio = await this.#upload(
        wavBytes(`honest-${String(i)}-${String(Date.now())}`, 512),
        '.wav',
      )
      if (audio === null) {
        await delay(300)
        i--
        continue
      }
      for (;;) {
        const reply = await this.#timed('submit', () =>
          httpCall(this.#port, {
            path: '/api/heygem/task/submit',
            body: {
              audio_hash: audio,
              audio_ext: '.wav',
              video_hash: this.#video,
              video_ext: '.mp4',
              license_key: 'HONEST-PC',
            },
            headers: { ...AUTH, 'idempotency-key': `honest-${String(i)}` },
          }),
        )
        const id = reply?.status === 200 ? dataOf(reply).task_id : undefined
        if (typeof id === 'string') {
          this.accepted.push({ id, audio })
          break
        }
        if (!this.#live()) return
        await delay(300)
      }
    }
  }

  async #poller(): Promise<void> {
    while (this.#live()) {
      const open = this.accepted.filter((t) => !FINAL.has(this.#final.get(t.id) ?? ''))
      const target = open[0] ?? this.accepted.at(-1)
      if (target === undefined) {
        await this.#timed('health', () => httpCall(this.#port, { path: '/api/heygem/health' }))
      } else {
        const reply = await this.#timed('status', () =>
          httpCall(this.#port, {
            path: `/api/heygem/task/status?task_id=${target.id}`,
            headers: AUTH,
          }),
        )
        const status = reply ? dataOf(reply).status : undefined
        if (typeof status === 'string') this.#final.set(target.id, status)
        await this.#timed('progress', () =>
          httpCall(this.#port, {
            path: `/api/heygem/progress?task_id=${target.id}`,
            headers: AUTH,
          }),
        )
      }
      await delay(150)
    }
  }

  /**
   * Once every accepted task is final (or `timeoutMs` passed): the tasks lost, that is not `done`
   * or `done` with bytes that are not the result of their own inputs.
   */
  async lost(timeoutMs: number): Promise<{ lost: string[]; states: Map<string, string> }> {
    const deadline = Date.now() + timeoutMs
    const states = new Map<string, string>()
    for (;;) {
      for (const task of this.accepted) {
        if (FINAL.has(states.get(task.id) ?? '')) continue
        const reply = await httpCall(this.#port, {
          path: `/api/heygem/task/status?task_id=${task.id}`,
          headers: AUTH,
        }).catch(() => null)
        const status = reply ? dataOf(reply).status : undefined
        if (typeof status === 'string') states.set(task.id, status)
      }
      if (this.accepted.every((t) => FINAL.has(states.get(t.id) ?? ''))) break
      if (Date.now() > deadline) break
      await delay(500)
    }
    const lost: string[] = []
    for (const task of this.accepted) {
      const state = states.get(task.id) ?? 'unknown'
      if (state !== 'done') {
        lost.push(`${task.id}: ${state}`)
        continue
      }
      const res = await fetch(`${this.#base}/api/heygem/download?task_id=${task.id}`, {
        headers: AUTH,
      })
      const bytes = Buffer.from(await res.arrayBuffer())
      if (!bytes.equals(fakeResultBytes(task.audio, this.#video, RESULT_SIZE))) {
        lost.push(`${task.id}: done with the wrong result (${String(bytes.length)} bytes)`)
      }
    }
    return { lost, states }
  }
}
