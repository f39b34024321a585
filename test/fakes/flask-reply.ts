/**
 * How a Flask app answers, byte for byte where a client could tell: `jsonify` (keys sorted, non-ASCII
 * escaped as `\uXXXX`, compact, a trailing newline, `Content-Type: application/json` without a
 * charset), Python's `json.dumps` for WebSocket frames (insertion order, `", "` and `": "`), and
 * Werkzeug's HTML error pages for unknown paths, wrong methods and crashes.
 */
import type { ServerResponse } from 'node:http'

/** JSON values as the fake builds them (no undefined, no functions). */
export type Json =
  string | number | boolean | null | readonly Json[] | { readonly [k: string]: Json }

function escapeNonAscii(text: string): string {
  // JSON.stringify leaves non-ASCII as is; Python's ensure_ascii escapes each UTF-16 unit.
  return text.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (typeof value !== 'object' || value === null) return value
  const sorted: Record<string, Json> = {}
  for (const key of Object.keys(value).sort()) {
    const child = (value as Record<string, Json>)[key]
    if (child !== undefined) sorted[key] = sortKeys(child)
  }
  return sorted
}

/** `flask.jsonify(value)`'s body. */
export function jsonifyText(value: Json): string {
  return `${escapeNonAscii(JSON.stringify(sortKeys(value)))}\n`
}

/** Python's `json.dumps(value)` with default arguments. */
export function pythonDumps(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(pythonDumps).join(', ')}]`
  if (typeof value === 'object' && value !== null) {
    const items = Object.entries(value).map(([k, v]) => `${pythonDumps(k)}: ${pythonDumps(v)}`)
    return `{${items.join(', ')}}`
  }
  return escapeNonAscii(JSON.stringify(value))
}

/** The `after_request` hook of run_server: on every reply, errors included. */
export const CORS_HEADERS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, Range',
  'Access-Control-Expose-Headers':
    'Content-Length, Content-Range, Accept-Ranges, Content-Disposition',
} as const

export function applyCors(res: ServerResponse): void {
  for (const [name, value] of Object.entries(CORS_HEADERS)) res.setHeader(name, value)
}

function sendBody(res: ServerResponse, status: number, body: { type: string; text: string }): void {
  res.statusCode = status
  res.setHeader('Content-Type', body.type)
  res.setHeader('Content-Length', Buffer.byteLength(body.text))
  res.end(body.text)
}

export function sendJson(res: ServerResponse, status: number, body: Json): void {
  sendBody(res, status, { type: 'application/json', text: jsonifyText(body) })
}

/** `jsonify({"code": status, "msg": msg}), status`: no `data` key. */
export function sendFailure(res: ServerResponse, status: number, msg: string): void {
  sendJson(res, status, { code: status, msg })
}

const HTML_ERRORS = {
  400: [
    'Bad Request',
    'The browser (or proxy) sent a request that this server could not understand.',
  ],
  404: [
    'Not Found',
    'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.',
  ],
  405: ['Method Not Allowed', 'The method is not allowed for the requested URL.'],
  416: ['Requested Range Not Satisfiable', 'The server cannot provide the requested range.'],
  500: [
    'Internal Server Error',
    'The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.',
  ],
} as const

export type HtmlErrorStatus = keyof typeof HTML_ERRORS

/** Werkzeug's HTML page for an HTTP error (what Flask answers outside the app's own JSON). */
export function htmlErrorPage(status: HtmlErrorStatus): string {
  const [name, description] = HTML_ERRORS[status]
  return `<!doctype html>\n<html lang=en>\n<title>${String(status)} ${name}</title>\n<h1>${name}</h1>\n<p>${description}</p>\n`
}

export function sendHtmlError(res: ServerResponse, status: HtmlErrorStatus): void {
  sendBody(res, status, { type: 'text/html; charset=utf-8', text: htmlErrorPage(status) })
}

/**
 * run_server's `_check_auth`: the header with every `Bearer ` removed, trimmed, must equal the
 * secret; no secret means no check.
 */
export function authorized(header: string | undefined, secret: string): boolean {
  if (secret === '') return true
  return (header ?? '').replaceAll('Bearer ', '').trim() === secret
}

/** A failure the route's Python code would raise (a non-dict body, a non-string field): HTTP 500. */
export class FlaskCrash extends Error {
  constructor(why: string) {
    super(`the real run_server raises here: ${why}`)
    this.name = 'FlaskCrash'
  }
}

/** A multipart body Werkzeug cannot parse: HTTP 400 page. */
export class FlaskBadRequest extends Error {
  constructor(why: string, options?: { cause: unknown }) {
    super(why, options)
    this.name = 'FlaskBadRequest'
  }
}
