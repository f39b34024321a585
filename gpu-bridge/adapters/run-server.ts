/**
 * Adapter for the GPU machine's run_server (Flask, DESIGN §8): md5 file pool (`check_files`,
 * `upload_file`), `submit`, `progress`, `download`. Tasks live only in its memory, so after a
 * restart it answers 404 for old task ids: that is "lost", and the attempt is run again.
 */
import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import type { GpuAdapter, InputSource, JobStatus, ResultStream } from './types.js'
import { ServiceUnreachable, SubmitUncertain } from './types.js'
import { HttpError, readEnvelope, requestJson, uploadMultipart } from '../../lib/http-client.js'
import {
  CheckFilesData,
  GpuSubmitData,
  HEYGEM_PATHS,
  ProgressData,
  UploadFileData,
  type FileRef,
  type GpuSubmitRequest,
  type TaskMessage,
} from '../../protocol/index.js'

export function runServerAdapter(serviceUrl: string): GpuAdapter {
  const url = (path: string): string => new URL(path, serviceUrl).toString()

  /** A JSON call; `idempotent` calls may be sent again after any connection failure. */
  async function call<T>(
    path: string,
    schema: import('zod').ZodType<T>,
    body: unknown,
    idempotent: boolean,
  ): Promise<T> {
    const target = url(path)
    try {
      const reply = await requestJson(target, body === undefined ? {} : { body })
      return readEnvelope(target, reply.status, reply.body, schema)
    } catch (err) {
      if (!(err instanceof HttpError)) throw err
      if (err.status === 0 && (idempotent || err.notDelivered)) {
        throw new ServiceUnreachable(err.message, { cause: err })
      }
      if (!idempotent && (err.status === 0 || (err.status >= 502 && err.status <= 504))) {
        throw new SubmitUncertain(`GPU 服务未确认是否收到任务：${err.message}`, { cause: err })
      }
      throw err
    }
  }

  return {
    name: 'run-server',

    async prepare(task: TaskMessage, source: InputSource, signal: AbortSignal): Promise<string[]> {
      const files = uniqueFiles([task.input.audio, task.input.video])
      const present = await call(
        HEYGEM_PATHS.checkFiles,
        CheckFilesData,
        { files: files.map((f) => ({ hash: f.hash, ext: f.ext })) },
        true,
      )
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
            fields: { hash: file.hash, ext: file.ext },
            fileField: 'file',
            filename: `${file.hash}${file.ext}`,
          })
        } catch (err) {
          throw unreachableOr(err)
        } finally {
          stream.destroy() // an early error reply leaves the gateway download half-read
        }
        const stored = readEnvelope(target, reply.status, reply.body, UploadFileData)
        if (stored.hash !== file.hash) {
          throw new Error(`file ${file.hash} arrived at the GPU service as ${stored.hash}`)
        }
        sent.push(file.hash)
      }
      return sent
    },

    async submit(task: TaskMessage): Promise<string> {
      const body: GpuSubmitRequest = {
        audio_hash: task.input.audio.hash,
        audio_ext: task.input.audio.ext,
        video_hash: task.input.video.hash,
        video_ext: task.input.video.ext,
      }
      const data = await call(HEYGEM_PATHS.submit, GpuSubmitData, body, false)
      return data.task_id
    },

    async poll(serviceTaskId: string): Promise<JobStatus> {
      let data
      try {
        data = await call(
          `${HEYGEM_PATHS.progress}?task_id=${encodeURIComponent(serviceTaskId)}`,
          ProgressData,
          undefined,
          true,
        )
      } catch (err) {
        if (err instanceof HttpError && err.status === 404) return { kind: 'lost' }
        // A reply we cannot read is no verdict on the job: keep asking (bounded by the caller).
        if (err instanceof HttpError && err.status < 400 && err.code === 0) {
          throw new ServiceUnreachable(err.message, { cause: err })
        }
        throw err
      }
      switch (data.status) {
        case 'done':
          return { kind: 'done' }
        case 'error':
          return { kind: 'failed', message: data.error_msg ?? data.message, retryable: false }
        case 'queued':
          return { kind: 'running', stage: 'queued', progress: 0, message: data.message }
        default:
          return {
            kind: 'running',
            stage: data.status,
            progress: data.progress,
            message: data.message,
          }
      }
    },

    async openResult(serviceTaskId: string, signal: AbortSignal): Promise<ResultStream> {
      const target = url(`${HEYGEM_PATHS.download}?task_id=${encodeURIComponent(serviceTaskId)}`)
      let res: Response
      try {
        res = await fetch(target, { signal })
      } catch (err) {
        throw new ServiceUnreachable(`cannot download from ${target}`, { cause: err })
      }
      if (res.status !== 200 || !res.body) {
        const text = await res.text()
        throw new HttpError(
          `download of ${serviceTaskId} failed: HTTP ${res.status} ${text.slice(0, 200)}`,
          res.status,
          null,
          text,
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
