/**
 * A multipart body read as Werkzeug presents it to run_server: `request.form` (first value of each
 * field) and `request.files` (parts with a non-empty file name; the first per field). Files are
 * streamed to temporary paths while hashing; the caller places or discards them. A body that is not
 * multipart has no form and no files (the route then answers its own "缺少 …" error).
 */
import busboy from 'busboy'
import { createWriteStream } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { Md5Tap } from '../../lib/hash.js'
import { FlaskBadRequest } from './flask-reply.js'

export interface ReceivedFile {
  /** Where the bytes are now (a temporary path). */
  readonly path: string
  readonly filename: string
  readonly hash: string
  readonly size: number
}

export interface ReceivedForm {
  readonly fields: ReadonlyMap<string, string>
  readonly files: ReadonlyMap<string, ReceivedFile>
  /** Remove every received file that was not moved elsewhere. */
  discardAll(): Promise<void>
}

export interface FormSink {
  readonly tempPath: () => string
  readonly discard: (path: string) => Promise<void>
}

export async function readForm(req: IncomingMessage, sink: FormSink): Promise<ReceivedForm> {
  const files = new Map<string, ReceivedFile>()
  const discardAll = async (): Promise<void> => {
    for (const file of files.values()) await sink.discard(file.path)
  }
  const fields = new Map<string, string>()
  const type = req.headers['content-type'] ?? ''
  if (!/^multipart\/form-data/i.test(type)) {
    req.resume()
    return { fields, files, discardAll }
  }
  let parser: busboy.Busboy
  try {
    // Werkzeug decodes part names and file names as UTF-8 (busboy's default is latin1).
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: { files: 8, fields: 50 },
    })
  } catch (err) {
    req.resume()
    throw new FlaskBadRequest('multipart without a boundary', { cause: err })
  }
  const writes: Promise<void>[] = []
  const claimed = new Set<string>()
  parser.on('field', (name, value) => {
    if (!fields.has(name)) fields.set(name, value)
  })
  parser.on('file', (name, stream, info) => {
    const filename = info.filename ?? ''
    if (filename === '' || claimed.has(name)) {
      stream.resume()
      return
    }
    claimed.add(name)
    const path = sink.tempPath()
    const tap = new Md5Tap()
    const write = pipeline(stream, tap, createWriteStream(path)).then(() => {
      files.set(name, { path, filename, ...tap.result() })
    })
    // Awaited below; this only keeps an early failure from being reported as unhandled.
    write.catch(() => sink.discard(path))
    writes.push(write)
  })
  try {
    await pipeline(req, parser)
    await Promise.all(writes)
  } catch (err) {
    await Promise.allSettled(writes)
    await discardAll()
    throw new FlaskBadRequest('multipart body cut short or malformed', { cause: err })
  }
  return { fields, files, discardAll }
}
