/**
 * A GPU service adapter (docs/design.md §8): how the bridge gets one task run by the service next to it.
 * The bridge owns claims, events and the inbox; an adapter only talks to its service.
 */
import type { Readable } from 'node:stream'
import type {
  FileRef,
  ServiceReadiness,
  Stage,
  TaskMessage,
  TaskType,
} from '../../protocol/index.js'

/** Where input files come from (the gateway's file pool), streamed. */
export interface InputSource {
  open(file: FileRef, signal: AbortSignal): Promise<Readable>
}

export type JobStatus =
  | {
      readonly kind: 'running'
      readonly stage: Stage
      readonly progress: number
      readonly message: string
      readonly currentFrame?: number
      readonly totalFrames?: number
    }
  | { readonly kind: 'done' }
  /** The service says the job failed; `retryable` false for bad input (no face, bad file). */
  | { readonly kind: 'failed'; readonly message: string; readonly retryable: boolean }
  /** The service no longer knows the job (it restarted): the attempt must be run again. */
  | { readonly kind: 'lost' }

export interface ResultStream {
  readonly stream: Readable
  /** From Content-Length, when the service sends one. */
  readonly size: number | null
  readonly ext: string
}

/** A started job: the service's own id; `cached` when the service answered from its cache. */
export interface Submitted {
  readonly serviceTaskId: string
  readonly cached: boolean
}

export interface Readiness {
  readonly state: ServiceReadiness
  /** What the service said, for the log (never shown to users). */
  readonly detail: string
}

export interface GpuAdapter {
  readonly name: string
  /** The task types this service runs; the bridge declares them and is offered only those. */
  readonly taskTypes: readonly TaskType[]
  /**
   * Can the service take a job now? Cheap and side-effect free; the bridge claims nothing until
   * this says `ready` (run_server keeps its port closed while its models load).
   */
  readiness(signal: AbortSignal): Promise<Readiness>
  /** Make the inputs available to the service; returns the hashes actually transferred. */
  prepare(task: TaskMessage, source: InputSource, signal: AbortSignal): Promise<string[]>
  /** Start the job. */
  submit(task: TaskMessage, signal: AbortSignal): Promise<Submitted>
  poll(serviceTaskId: string, signal: AbortSignal): Promise<JobStatus>
  openResult(serviceTaskId: string, signal: AbortSignal): Promise<ResultStream>
}

/** How an adapter is made: where its service is, and the secret it wants (null: none). */
export interface AdapterOptions {
  readonly url: string
  readonly secret: string | null
}

/** What a service's status word means to the relay: a stage while the job runs, or its end. */
export type ServiceWordMeaning = Stage | 'done' | 'failed'

/**
 * An adapter's progress vocabulary (docs/design.md §8): every status word its service reports,
 * with the relay's stage for it (or the end it means), and the stage for a word it does not list
 * (a newer version of the service): the relay's words never depend on a service's.
 */
export interface ProgressVocabulary<W extends string = string> {
  readonly words: Readonly<Record<W, ServiceWordMeaning>>
  readonly unknown: Stage
}

/**
 * One adapter as the registry lists it (adapters/registry.ts): what it declares before it is
 * made (its name, the task types it runs, its progress vocabulary), its readiness check and its
 * factory. The adapter it makes has the same name and task types.
 */
export interface AdapterEntry {
  readonly name: string
  readonly taskTypes: readonly TaskType[]
  readonly vocabulary: ProgressVocabulary
  readonly readiness: (options: AdapterOptions, signal: AbortSignal) => Promise<Readiness>
  readonly create: (options: AdapterOptions) => GpuAdapter
}

/** A failure to reach the service at all (connection refused, timeout): worth retrying soon. */
export class ServiceUnreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ServiceUnreachable'
  }
}

/**
 * The service refused the job for good (bad input). `userText` is what the task's owner reads:
 * Chinese, no URLs, no library messages (those stay in `message`, for the log).
 */
export class ServiceRejected extends Error {
  readonly userText: string
  constructor(message: string, userText: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ServiceRejected'
    this.userText = userText
  }
}

/**
 * A submit whose fate is unknown (a timeout, or a connection cut after the request left): the
 * service may have started the job. It is never sent again for the same attempt.
 */
export class SubmitUncertain extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SubmitUncertain'
  }
}
