/**
 * The bridge's scheduler: claims the oldest received task while a slot is free, runs it once the
 * gateway grants the claim, reports the outcome and re-sends it until acknowledged (docs/design.md §3.2,
 * §3.5). All state lives in the inbox; this class only holds timers and the running jobs.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { Inbox, InboxRow } from './inbox.js'
import { runJob, type JobDeps, type JobOutcome } from './job.js'
import type { ProgressUpdate } from './progress-throttle.js'
import { TEXTS } from './user-text.js'
import {
  PROTOCOL_VERSION,
  TEXT_LIMITS,
  clip,
  type BridgeEvent,
  type ControlMessage,
  type TaskMessage,
} from '../protocol/index.js'

export interface RunnerDeps extends Omit<JobDeps, 'progress'> {
  readonly capacity: number
  readonly claimRetryMs: number
  readonly resendMs: number
  /** Publish a bridge event (QoS 1). */
  readonly send: (event: BridgeEvent) => void
  readonly isConnected: () => boolean
  /** The GPU service can take work (readiness.ts): nothing is claimed while it cannot. */
  readonly isReady: () => boolean
  /** The current connection's epoch, carried by claims. */
  readonly epoch: () => number
}

/**
 * How long to wait before claiming again after the gateway said "later": an older task comes
 * first (`not-next`; the gateway sends it to us) or it counts all our slots in use (`at-capacity`).
 */
const CLAIM_LATER_BACKOFF_MS = 1_000
/** How long a graceful close waits for a submit under way to answer (a submit is one request). */
const SUBMIT_SETTLE_MS = 5_000
const SUBMIT_SETTLE_POLL_MS = 20

export class Runner {
  readonly #d: RunnerDeps
  readonly #inbox: Inbox
  readonly #log: Logger
  readonly #jobs = new Map<string, AbortController>()
  /**
   * When a claim or an outcome was last sent, per task, in monotonic ms (in memory: a restart
   * re-sends at once; a wall-clock step back cannot hold a re-send for as long as it stepped).
   */
  readonly #sentAt = new Map<string, number>()
  #maintainTimer: NodeJS.Timeout | undefined
  #wakeTimer: NodeJS.Timeout | undefined
  /**
   * No claim before this (monotonic ms) after a "claim again later": every other task we hold
   * would be refused the same way, and a backlog of thousands must not become a storm of claims.
   */
  #pausedUntil = 0
  /** A task older than this one arriving lifts the pause (it is the one the gateway sent us). */
  #pausedOrder = -Infinity
  #closed = false

  constructor(deps: RunnerDeps) {
    this.#d = deps
    this.#inbox = deps.inbox
    this.#log = deps.log
    this.#maintainTimer = setInterval(
      () => this.#maintain(),
      Math.min(deps.resendMs, deps.claimRetryMs),
    )
  }

  /** Durable receipt (called before the MQTT ack). */
  receive(message: TaskMessage): void {
    // Expiry is the gateway's call (its clock): an expired task is refused at the claim.
    const outcome = this.#inbox.receive(message, this.#d.now())
    this.#log.info(
      { taskId: message.taskId, attempt: message.attempt, order: message.order, outcome },
      'task received',
    )
    if (outcome === 'replaced') this.#forget(message.taskId)
    if (outcome !== 'new' && outcome !== 'replaced') return
    if (message.order < this.#pausedOrder) this.#pausedUntil = 0
    this.pump()
  }

  control(message: ControlMessage): void {
    // A control that arrives while the bridge shuts down starts nothing (its inbox is closing).
    if (this.#closed) return
    const row = this.#inbox.current(message.taskId, message.attempt)
    switch (message.kind) {
      case 'claim-granted':
        // Granted is the gateway's committed decision: taken also when a refusal of an earlier
        // copy of this claim (sent again meanwhile) arrived first and put the row back.
        if (row?.phase !== 'claiming' && row?.phase !== 'received') return
        this.#sentAt.delete(row.taskId)
        this.#inbox.setPhase(row, 'running')
        this.#log.info({ taskId: row.taskId, attempt: row.attempt }, 'claim granted')
        // The service went away since the claim left: start once it is back (resume), rather
        // than spend the attempt waiting for it.
        if (this.#d.isReady()) this.#start(row)
        else
          this.#log.info({ taskId: row.taskId }, 'GPU service not ready; the job starts when it is')
        return
      case 'claim-refused':
        if (row?.phase !== 'claiming') return
        this.#sentAt.delete(row.taskId)
        if (
          message.reason === 'not-next' ||
          message.reason === 'at-capacity' ||
          message.reason === 'not-ready'
        ) {
          this.#claimLater(row, message.reason)
        } else {
          this.#inbox.drop(row.taskId, row.attempt)
          this.#log.info(
            { taskId: row.taskId, attempt: row.attempt, reason: message.reason },
            'claim refused; dropped',
          )
        }
        this.pump()
        return
      case 'cancel':
        if (!row) return
        this.#forget(row.taskId)
        // An offer we only held (a birth reconcile cancels thousands another GPU ran) goes
        // without an fsync of its own; one we claimed or ran is removed durably.
        if (row.phase === 'received') this.#inbox.drop(row.taskId, row.attempt)
        else this.#inbox.remove(row.taskId, row.attempt)
        this.#log.info(
          { taskId: row.taskId, attempt: row.attempt, reason: message.reason },
          'task cancelled',
        )
        this.pump()
        return
      case 'ack':
        if (row?.phase === 'finished' && row.finalEvent?.seq === message.seq) {
          this.#inbox.remove(row.taskId, row.attempt)
          this.#sentAt.delete(row.taskId)
          this.#log.debug({ taskId: row.taskId }, 'outcome acknowledged')
        }
        return
    }
  }

  /**
   * After every (re)connection, and when the GPU service becomes ready: resume what the inbox
   * says is ours (jobs and claims only while the service is ready), then claim more.
   */
  resume(): void {
    for (const row of this.#inbox.inPhase('finished')) this.#sendFinal(row)
    if (this.#d.isReady()) {
      for (const row of this.#inbox.inPhase('running')) {
        if (!this.#jobs.has(row.taskId)) this.#start(row)
      }
      for (const row of this.#inbox.inPhase('claiming')) this.#sendClaim(row)
    }
    this.pump()
  }

  /** Claim while a slot is free and the GPU service is ready. */
  pump(): void {
    if (this.#closed || !this.#d.isConnected() || !this.#d.isReady()) return
    if (monotonic() < this.#pausedUntil) return
    for (;;) {
      if (this.#inbox.busy() >= this.#d.capacity) return
      const next = this.#inbox.nextToClaim(this.#d.now())
      if (!next) return
      this.#sendClaim(next, this.#inbox.startClaim(next.taskId, next.attempt))
    }
  }

  /**
   * Stop claiming and stop the jobs (the inbox keeps them for the next start). A submit already
   * sent is given a moment to return the service's task id first: a job stopped between the two
   * would, after the restart, be one whose submit may have run (job.ts), and its attempt would be
   * run again elsewhere while the service may be running it.
   */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#maintainTimer)
    clearTimeout(this.#wakeTimer)
    this.#maintainTimer = undefined
    const settleBy = monotonic() + SUBMIT_SETTLE_MS
    while (this.#submitting() && monotonic() < settleBy) await sleep(SUBMIT_SETTLE_POLL_MS)
    for (const controller of this.#jobs.values()) controller.abort()
    this.#jobs.clear()
  }

  /** A job of ours has sent its submit and not yet stored the service's answer. */
  #submitting(): boolean {
    return this.#inbox
      .inPhase('running')
      .some((row) => this.#jobs.has(row.taskId) && row.submitStarted && row.serviceTaskId === null)
  }

  /** A claim, or a claim sent again (with a new sequence number). */
  #sendClaim(row: InboxRow, seq = this.#inbox.nextSeq(row.taskId, row.attempt)): void {
    this.#sentAt.set(row.taskId, monotonic())
    this.#d.send({
      v: PROTOCOL_VERSION,
      kind: 'claim',
      taskId: row.taskId,
      attempt: row.attempt,
      seq,
      epoch: this.#d.epoch(),
    })
  }

  #start(row: InboxRow): void {
    const controller = new AbortController()
    this.#jobs.set(row.taskId, controller)
    const progress = (update: ProgressUpdate): void => {
      if (controller.signal.aborted) return
      const seq = this.#inbox.nextSeq(row.taskId, row.attempt)
      this.#d.send({
        v: PROTOCOL_VERSION,
        kind: 'progress',
        taskId: row.taskId,
        attempt: row.attempt,
        seq,
        progress: Math.min(100, Math.max(0, update.progress)),
        stage: update.stage,
        message: clip(update.message, TEXT_LIMITS.progressMessage),
        ...(update.currentFrame === undefined ? {} : { currentFrame: update.currentFrame }),
        ...(update.totalFrames === undefined ? {} : { totalFrames: update.totalFrames }),
      })
    }
    runJob(row, { ...this.#d, progress }, controller.signal).then(
      (outcome) => {
        if (this.#jobs.get(row.taskId) === controller) this.#jobs.delete(row.taskId)
        if (!controller.signal.aborted && !this.#closed) this.#finish(row, outcome)
      },
      (err: unknown) => {
        if (this.#jobs.get(row.taskId) === controller) this.#jobs.delete(row.taskId)
        if (!controller.signal.aborted && !this.#closed) {
          this.#log.error({ err, taskId: row.taskId }, 'job crashed')
          this.#finish(row, { kind: 'error', message: TEXTS.generic, retryable: true })
        }
      },
    )
  }

  #finish(row: InboxRow, outcome: JobOutcome): void {
    if (!this.#inbox.current(row.taskId, row.attempt)) return
    const seq = this.#inbox.nextSeq(row.taskId, row.attempt)
    const base = { v: PROTOCOL_VERSION, taskId: row.taskId, attempt: row.attempt, seq } as const
    const event: BridgeEvent =
      outcome.kind === 'done'
        ? { ...base, kind: 'done', result: outcome.result, elapsedMs: outcome.elapsedMs }
        : {
            ...base,
            kind: 'error',
            // A service's traceback can be long; the event carries what the contract allows.
            message: clip(outcome.message, TEXT_LIMITS.errorMessage),
            retryable: outcome.retryable,
          }
    this.#inbox.finish(row.taskId, row.attempt, event)
    this.#log.info(
      {
        taskId: row.taskId,
        attempt: row.attempt,
        outcome: outcome.kind,
        ...(outcome.kind === 'error' ? { message: outcome.message } : {}),
      },
      'task finished on GPU',
    )
    this.#sentAt.set(row.taskId, monotonic())
    this.#d.send(event)
    this.pump()
  }

  #sendFinal(row: InboxRow): void {
    if (!row.finalEvent) return
    this.#sentAt.set(row.taskId, monotonic())
    this.#d.send(row.finalEvent)
  }

  /** Stop following a task here: abort its job, drop its timers. */
  #forget(taskId: string): void {
    this.#sentAt.delete(taskId)
    const controller = this.#jobs.get(taskId)
    if (!controller) return
    controller.abort()
    this.#jobs.delete(taskId)
  }

  /** Re-send unanswered claims and unacknowledged outcomes. */
  #maintain(): void {
    if (this.#closed || !this.#d.isConnected()) return
    const now = monotonic()
    // A claim waits while the service cannot run it: a grant now would only spend the attempt.
    for (const row of this.#d.isReady() ? this.#inbox.inPhase('claiming') : []) {
      if (now - (this.#sentAt.get(row.taskId) ?? 0) >= this.#d.claimRetryMs) this.#sendClaim(row)
    }
    for (const row of this.#inbox.inPhase('finished')) {
      if (now - (this.#sentAt.get(row.taskId) ?? 0) >= this.#d.resendMs) this.#sendFinal(row)
    }
    this.pump()
  }

  /** Back to `received` with a backoff, and no claim at all until it is over. */
  #claimLater(row: InboxRow, reason: 'not-next' | 'at-capacity' | 'not-ready'): void {
    this.#inbox.setPhase(row, 'received', this.#d.now() + CLAIM_LATER_BACKOFF_MS)
    this.#pausedUntil = monotonic() + CLAIM_LATER_BACKOFF_MS
    // After `not-next` the gateway sends us the older tasks we lack: their arrival ends the wait.
    this.#pausedOrder = reason === 'not-next' ? row.order : -Infinity
    this.#log.debug({ taskId: row.taskId, attempt: row.attempt, reason }, 'claim again later')
    this.#wakeIn(CLAIM_LATER_BACKOFF_MS)
  }

  #wakeIn(ms: number): void {
    clearTimeout(this.#wakeTimer)
    this.#wakeTimer = setTimeout(() => this.pump(), ms + 10)
  }
}

/** Monotonic ms for the re-send intervals. */
function monotonic(): number {
  return performance.now()
}
