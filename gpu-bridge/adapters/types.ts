/**
 * A GPU service adapter (DESIGN §8): how the bridge gets one task run by the service next to it.
 * The bridge owns claims, events and the inbox; an adapter only talks to its service.
 */
import type { Readable } from 'node:stream'
import type { FileRef, Stage, TaskMessage } from '../../protocol/index.js'

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

export interface GpuAdapter {
  readonly name: string
  /** Make the inputs available to the service; returns the hashes actually transferred. */
  prepare(task: TaskMessage, source: InputSource, signal: AbortSignal): Promise<string[]>
  /** Start the job; returns the service's own task id. */
  submit(task: TaskMessage, signal: AbortSignal): Promise<string>
  poll(serviceTaskId: string, signal: AbortSignal): Promise<JobStatus>
  openResult(serviceTaskId: string, signal: AbortSignal): Promise<ResultStream>
}

/** A failure to reach the service at all (connection refused, timeout): worth retrying soon. */
export class ServiceUnreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ServiceUnreachable'
  }
}

/** The service refused the job for good (bad input). */
export class ServiceRejected extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ServiceRejected'
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
