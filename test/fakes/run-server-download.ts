/**
 * Flask's `send_file(path, mimetype="video/mp4", as_attachment=False, download_name=…)` with
 * Werkzeug's conditional handling: `Content-Disposition: inline; filename=…`, `Accept-Ranges: bytes`,
 * one `Range: bytes=a-b` → 206 with `Content-Range`, an unsatisfiable one → 416, HEAD without a body.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { htmlErrorPage } from './flask-reply.js'

type ByteRange = { readonly start: number; readonly end: number } | 'unsatisfiable' | null

/** A single `bytes=` range; anything else is ignored (the whole file), as Werkzeug does. */
export function parseRange(header: string | undefined, size: number): ByteRange {
  const match = /^bytes=(\d*)-(\d*)$/.exec((header ?? '').trim())
  if (!match) return null
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return null
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (last !== '' && Number(last) < start) return null
  if (start >= size) return 'unsatisfiable'
  return { start, end }
}

export async function sendResultFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: { readonly path: string; readonly downloadName: string },
): Promise<void> {
  const info = await stat(file.path)
  const size = info.size
  const range = parseRange(req.headers.range, size)
  res.setHeader('Accept-Ranges', 'bytes')
  res.setHeader('Cache-Control', 'no-cache')
  res.setHeader('Last-Modified', info.mtime.toUTCString())
  res.setHeader('ETag', `"${String(Math.floor(info.mtimeMs))}-${String(size)}"`)
  if (range === 'unsatisfiable') {
    const body = htmlErrorPage(416)
    res.statusCode = 416
    res.setHeader('Content-Range', `bytes */${String(size)}`)
    res.setHeader('Content-Type', 'text/html; charset=utf-8')
    res.setHeader('Content-Length', Buffer.byteLength(body))
    res.end(body)
    return
  }
  res.setHeader('Content-Type', 'video/mp4')
  res.setHeader('Content-Disposition', `inline; filename=${file.downloadName}`)
  const { start, end } = range ?? { start: 0, end: size - 1 }
  if (range) {
    res.statusCode = 206
    res.setHeader('Content-Range', `bytes ${String(start)}-${String(end)}/${String(size)}`)
  } else {
    res.statusCode = 200
  }
  res.setHeader('Content-Length', String(Math.max(0, end - start + 1)))
  if (req.method === 'HEAD' || size === 0) {
    res.end()
    return
  }
  // A client that goes away mid-download is not an error of the service.
  await pipeline(createReadStream(file.path, { start, end }), res).catch(() => undefined)
}
