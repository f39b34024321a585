/**
 * The one streamed multipart receiver behind every upload (upload_file, the legacy upload, asset
 * upload): each expected file field is sniffed (media-sniff.ts) and staged in the pool while its
 * md5 is computed; nothing is buffered whole. Over the size limit a file is cut off (and a body
 * that goes on and on gets a 413 and a closed connection); a client that goes away mid-upload
 * leaves nothing behind. The caller checks what arrived, commits what it accepts, and `settle()`
 * removes every staged file it did not commit. `receiveFile` is the common case: one file field,
 * refused when missing or cut off.
 */
import type { Request, Response } from 'express'
import busboy from 'busboy'
import type { Readable } from 'node:stream'
import { diskFull } from './disk-space.js'
import type { FilePool, Staged } from './file-pool.js'
import { closeAfterReply } from './lingering-close.js'
import { MediaSniffer, type Sniffed } from './media-sniff.js'
import { appError, isAppError, type AppError } from '../lib/errors.js'

export interface ReceivedFile {
  readonly field: string
  /** As sent, path and all (callers refuse names with a path). */
  readonly filename: string
  readonly hash: string
  readonly size: number
  readonly sniffed: Sniffed
  /** Cut off at the size limit. */
  readonly truncated: boolean
  /** Into the pool (kept if already there); a committed file is no longer settled away. */
  commit(): Promise<void>
}

export interface Received {
  field(name: string): string | undefined
  file(name: string): ReceivedFile | undefined
  /** Remove every staged file not committed. Call once, whatever happened (finally). */
  settle(): Promise<void>
}

export interface ReceiveOptions {
  readonly pool: FilePool
  readonly maxFileBytes: number
  /** The file fields to take; any other file is read past and dropped. */
  readonly fileFields: readonly string[]
  /** For the 400 when the body is not multipart, e.g. `file、hash、ext`. */
  readonly expects: string
}

/** Past the size limit a client may send this much more before the connection is cut. */
const GRACE_BYTES = 1024 * 1024

export function tooLarge(maxBytes: number): AppError {
  return appError('FILE_TOO_LARGE', { params: { maxBytes } })
}

/** Cut off at the size limit: refused, whatever else is wrong with it. */
export function assertComplete(file: ReceivedFile, maxBytes: number): void {
  if (file.truncated) throw tooLarge(maxBytes)
}

export interface ReceiveFileOptions extends Omit<ReceiveOptions, 'fileFields'> {
  /** The 400's words when the `file` field is not in the body (run_server's, per route). */
  readonly missing: 'fileFieldMissing' | 'assetFileMissing'
}

/**
 * Receive a body whose one file is the field `file` (as run_server's single-file uploads send it),
 * refusing it (after settling) when that file is missing or cut off at the size limit. The caller
 * settles `upload` once done with it (finally).
 */
export async function receiveFile(
  req: Request,
  res: Response,
  opts: ReceiveFileOptions,
): Promise<{ upload: Received; file: ReceivedFile }> {
  const { missing, ...rest } = opts
  const upload = await receiveMultipart(req, res, { ...rest, fileFields: ['file'] })
  try {
    const file = upload.file('file')
    if (!file) throw appError('VALIDATION_FAILED', { variant: missing })
    assertComplete(file, opts.maxFileBytes)
    return { upload, file }
  } catch (err) {
    await upload.settle()
    throw err
  }
}

export function receiveMultipart(
  req: Request,
  res: Response,
  opts: ReceiveOptions,
): Promise<Received> {
  return new Promise((resolve, reject) => {
    // A full disk: refused before a byte of the body is read (the reply closes the connection).
    if (opts.pool.space.full()) {
      reject(diskFull())
      return
    }
    let parser: busboy.Busboy
    try {
      parser = busboy({
        headers: req.headers,
        // Keep the name as sent, so a name with a path is refused rather than quietly trimmed.
        preservePath: true,
        // Browsers and Python's requests send file names as raw UTF-8 (busboy assumes latin1).
        defParamCharset: 'utf8',
        limits: {
          files: opts.fileFields.length,
          fields: 20,
          fieldSize: 64 * 1024,
          fileSize: opts.maxFileBytes,
        },
      })
    } catch (err) {
      reject(appError('BAD_UPLOAD', { params: { fields: opts.expects }, cause: err }))
      return
    }
    const fields = new Map<string, string>()
    const active = new Set<Readable>()
    const staging: Promise<StagedFile>[] = []
    let failed = false

    const fail = (err: AppError): void => {
      if (failed) return
      failed = true
      // Refused mid-body: nothing more of it is parsed or written. The error reply drops the
      // rest (http-envelope.ts); a body far past the size limit also closes the connection.
      req.unpipe(parser)
      if (!req.complete && err.code === 'FILE_TOO_LARGE') {
        closeAfterReply(req, res)
      }
      for (const stream of active) stream.destroy(new Error('upload refused'))
      // Answer once nothing is left: what was staged is discarded, what was still streaming
      // removes its own partial file as its pipeline fails.
      void Promise.allSettled(staging)
        .then((all) =>
          Promise.all(
            all.map((s) => (s.status === 'fulfilled' ? s.value.discard() : Promise.resolve())),
          ),
        )
        .finally(() => {
          reject(err)
        })
    }

    // A client that goes away mid-upload: stop writing, and the partial files are removed.
    req.once('close', () => {
      if (!req.complete) fail(appError('UPLOAD_ABORTED'))
    })
    parser.on('field', (name, value) => {
      if (!fields.has(name)) fields.set(name, value)
    })
    const taken = new Set<string>()
    parser.on('file', (name, stream, info) => {
      if (failed || !opts.fileFields.includes(name) || taken.has(name)) {
        stream.resume()
        return
      }
      taken.add(name)
      active.add(stream)
      let truncated = false
      stream.on('limit', () => {
        truncated = true
      })
      const sniffer = new MediaSniffer()
      const staged = opts.pool.stage(stream, sniffer).then(
        (s) =>
          stagedFile(s, {
            field: name,
            filename: info.filename ?? '',
            sniffed: sniffer.result(),
            truncated: () => truncated,
          }),
        (err: unknown) => {
          throw uploadFailed(err)
        },
      )
      // A file that cannot be written (a full disk) is answered at once, not at the body's end:
      // the parser would wait for ever on the file stream nobody reads any more.
      staged
        .catch((err: unknown) => {
          fail(uploadFailed(err))
        })
        .finally(() => active.delete(stream))
      staging.push(staged)
    })
    parser.on('error', (err) => {
      fail(appError('BAD_UPLOAD', { variant: 'unreadable', cause: err }))
    })
    parser.on('close', () => {
      Promise.all(staging).then(
        (files) => {
          if (failed) {
            void Promise.all(files.map((f) => f.discard()))
            return
          }
          const byField = new Map(files.map((f) => [f.field, f]))
          resolve({
            field: (name) => fields.get(name),
            file: (name) => byField.get(name),
            settle: async () => {
              await Promise.all(files.map((f) => f.discard()))
            },
          })
        },
        (err: unknown) => {
          fail(uploadFailed(err))
        },
      )
    })
    // busboy stops storing at the limit but would read the rest of the body, however long:
    // a little over the limit, answer 413 and close the connection instead.
    const bodyLimit = opts.maxFileBytes * opts.fileFields.length + GRACE_BYTES
    let received = 0
    req.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (received <= bodyLimit || req.readableEnded || failed) return
      fail(tooLarge(opts.maxFileBytes))
    })
    req.pipe(parser)
  })
}

/** A staging failure as the caller's error: DISK_FULL (and other AppErrors) as they are. */
function uploadFailed(err: unknown): AppError {
  return isAppError(err) ? err : appError('UPLOAD_FAILED', { cause: err })
}

interface StagedFile extends ReceivedFile {
  discard(): Promise<void>
}

interface FilePart {
  readonly field: string
  readonly filename: string
  readonly sniffed: Sniffed
  readonly truncated: () => boolean
}

function stagedFile(staged: Staged, { field, filename, sniffed, truncated }: FilePart): StagedFile {
  let settled = false
  return {
    field,
    filename,
    hash: staged.hash,
    size: staged.size,
    sniffed,
    get truncated() {
      return truncated()
    },
    async commit() {
      if (settled) throw new Error('staged file already settled')
      settled = true
      await staged.commit()
    },
    async discard() {
      if (settled) return
      settled = true
      await staged.discard()
    },
  }
}
