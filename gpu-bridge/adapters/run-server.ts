/**
 * Adapter for the GPU machine's run_server (Flask, docs/design.md §8): md5 file pool
 * (`check_files`, `upload_file`), `submit`, `progress`, `download`, and `health` for readiness.
 * Its replies are read leniently (protocol/run-server.ts). With `api_secret` set in its
 * config.ini, every route but health needs `Authorization`, which the bridge sends from
 * GPU_SERVICE_SECRET. Tasks live only in its memory, so after a restart it answers 404 for old
 * task ids: that is "lost", and the attempt is run again.
 */
import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import type { z } from 'zod'
import type {
  AdapterEntry,
  AdapterOptions,
  GpuAdapter,
  InputSource,
  JobStatus,
  ProgressVocabulary,
  Readiness,
  ResultStream,
  Submitted,
} from './types.js'
import { ServiceRejected, ServiceUnreachable, SubmitUncertain } from './types.js'
import { probeRunServer } from './run-server-readiness.js'
import { meaningOf } from './vocabulary.js'
import { engineReason, serviceReplyText } from '../user-text.js'
import { HttpError, readEnvelope, requestJson, uploadMultipart } from '../../lib/http-client.js'
import {
  DEFAULT_TASK_TYPE,
  HEYGEM_PATHS,
  RunServerCheckFiles,
  RunServerProgress,
  RunServerSubmit,
  RunServerUpload,
  runServerAuthHeader,
  type FileRef,
  type RunServerStatus,
  type TaskMessage,
} from '../../protocol/index.js'

/** `secret` is run_server's `api_secret` (null: it has none). */
export type RunServerOptions = AdapterOptions

/**
 * run_server's status words in the relay's: its own queue (MAX_CONCURRENT is 1) is `waiting`, its
 * preprocessing `starting`, frame synthesis `rendering`. `encoding` is in its list though this
 * version never produces it. A word it may add later is followed as `starting`.
 */
export const RUN_SERVER_VOCABULARY: ProgressVocabulary<RunServerStatus> = {
  words: {
    queued: 'waiting',
    processing: 'starting',
    synthesizing: 'rendering',
    encoding: 'encoding',
    done: 'done',
    error: 'failed',
  },
  unknown: 'starting',
}

/** The run-server adapter as the registry lists it (adapters/registry.ts). */
export const runServerEntry: AdapterEntry = {
  name: 'run-server',
  taskTypes: [DEFAULT_TASK_TYPE],
  vocabulary: RUN_SERVER_VOCABULARY,
  readiness: (options, signal) =>
    probeRunServer(options.url, runServerAuthHeader(options.secret), signal),
  create: (options) => runServerAdapter(options),
}

export function runServerAdapter(options: RunServerOptions): GpuAdapter {
  const url = (path: string): string => new URL(path, options.url).toString()
  const auth = runServerAuthHeader(options.secret)

  /** A JSON call; `idempotent` calls may be sent again after any connection failure. */
  async function call<T>(
    path: string,
    schema: z.ZodType<T>,
    how: { readonly body: unknown; readonly idempotent: boolean },
  ): Promise<T> {
    const { body, idempotent } = how
    const target = url(path)
    try {
      const reply = await requestJson(target, {
        headers: auth,
        ...(body === undefined ? {} : { body }),
      })
      return readEnvelope(target, reply, schema)
    } catch (err) {
      if (!(err instanceof HttpError)) throw err
      if (err.status === 0 && (idempotent || err.notDelivered)) {
        throw new ServiceUnreachable(err.message, { cause: err })
      }
      if (!idempotent && (err.status === 0 || (err.status >= 502 && err.status <= 504))) {
        throw new SubmitUncertain(`submit to ${target} unconfirmed: ${err.message}`, { cause: err })
      }
      throw err
    }
  }

  return {
    name: runServerEntry.name,
    taskTypes: runServerEntry.taskTypes,

    readiness(signal: AbortSignal): Promise<Readiness> {
      return runServerEntry.readiness(options, signal)
    },

    async prepare(task: TaskMessage, source: InputSource, signal: AbortSignal): Promise<string[]> {
      const files = uniqueFiles([task.input.audio, task.input.video])
      const present = await call(HEYGEM_PATHS.checkFiles, RunServerCheckFiles, {
        body: { files: files.map((f) => ({ hash: f.hash, ext: f.ext })) },
        idempotent: true,
      })
      const sent: string[] = []
      for (const file of files) {
        if (present[file.hash] === true) continue
        signal.throwIfAborted()
        const stream = await source.open(file, signal)
        const target = url(HEYGEM_PATHS.uploadFile)
        let reply
        try {
          reply = await uploadMultipart({
            url: target,
            source: stream,
            size: file.size,
            headers: auth,
            fields: { hash: file.hash, ext: file.ext },
            fileField: 'file',
            filename: `${file.hash}${file.ext}`,
          })
        } catch (err) {
          throw unreachableOr(err)
        } finally {
          stream.destroy() // an early error reply leaves the gateway download half-read
        }
        const stored = readEnvelope(target, reply, RunServerUpload)
        // run_server renames an upload whose bytes do not match the hash: the copy is damaged.
        if (stored.hash !== undefined && stored.hash.toLowerCase() !== file.hash) {
          throw new Error(`file ${file.hash} arrived at the GPU service as ${stored.hash}`)
        }
        sent.push(file.hash)
      }
      return sent
    },

    async submit(task: TaskMessage): Promise<Submitted> {
      const body = {
        audio_hash: task.input.audio.hash,
        audio_ext: task.input.audio.ext,
        video_hash: task.input.video.hash,
        video_ext: task.input.video.ext,
        license_key: '',
      }
      try {
        const data = await call(HEYGEM_PATHS.submit, RunServerSubmit, {
          body: body,
          idempotent: false,
        })
        return { serviceTaskId: data.task_id, cached: data.cached === true }
      } catch (err) {
        // A refusal with a reason (a missing file after a cleanup, bad input) is the service's
        // verdict on this job: 404 means its file pool lost an input, worth another attempt.
        if (err instanceof HttpError && err.status >= 400 && err.status < 500) {
          const text = serviceReplyText(err.body)
          if (err.status !== 404 && err.status !== 401 && err.status !== 429) {
            throw new ServiceRejected(err.message, text, { cause: err })
          }
        }
        throw err
      }
    },

    async poll(serviceTaskId: string): Promise<JobStatus> {
      let data
      try {
        data = await call(
          `${HEYGEM_PATHS.progress}?task_id=${encodeURIComponent(serviceTaskId)}`,
          RunServerProgress,
          { body: undefined, idempotent: true },
        )
      } catch (err) {
        if (err instanceof HttpError && err.status === 404) return { kind: 'lost' }
        // A reply we cannot read is no verdict on the job: keep asking (bounded by the caller).
        if (err instanceof HttpError && err.status < 400 && err.code === 0) {
          throw new ServiceUnreachable(err.message, { cause: err })
        }
        throw err
      }
      const meaning = meaningOf(RUN_SERVER_VOCABULARY, data.status)
      switch (meaning) {
        case 'done':
          return { kind: 'done' }
        case 'failed':
          return {
            kind: 'failed',
            message: engineReason(data.error ?? null, data.message),
            retryable: false,
          }
        default:
          return {
            kind: 'running',
            stage: meaning,
            // While queued run_server counts 1–5 for its own place in line: nothing is done yet.
            progress: meaning === 'waiting' ? 0 : clampProgress(data.progress),
            message: data.message,
            ...(data.current_frame === undefined ? {} : { currentFrame: data.current_frame }),
            ...(data.total_frames === undefined ? {} : { totalFrames: data.total_frames }),
          }
      }
    },

    async openResult(serviceTaskId: string, signal: AbortSignal): Promise<ResultStream> {
      const target = url(`${HEYGEM_PATHS.download}?task_id=${encodeURIComponent(serviceTaskId)}`)
      let res: Response
      try {
        res = await fetch(target, { signal, headers: auth })
      } catch (err) {
        throw new ServiceUnreachable(`cannot download from ${target}`, { cause: err })
      }
      if (res.status !== 200 || !res.body) {
        const text = await res.text()
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch {
          // not JSON: keep the text
        }
        throw new HttpError(
          `download of ${serviceTaskId} failed: HTTP ${String(res.status)} ${text.slice(0, 200)}`,
          { status: res.status, code: null, body },
        )
      }
      const length = Number(res.headers.get('content-length'))
      return {
        stream: Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
        size:
          Number.isFinite(length) && length >= 0 && res.headers.has('content-length')
            ? length
            : null,
        ext: '.mp4',
      }
    },
  }
}

function clampProgress(value: number): number {
  return Number.isFinite(value) ? Math.min(100, Math.max(0, value)) : 0
}

function uniqueFiles(files: readonly FileRef[]): FileRef[] {
  const seen = new Set<string>()
  return files.filter((f) => (seen.has(f.hash) ? false : (seen.add(f.hash), true)))
}

function unreachableOr(err: unknown): unknown {
  if (err instanceof HttpError && err.status === 0) {
    return new ServiceUnreachable(err.message, { cause: err })
  }
  return err
}
