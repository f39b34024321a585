/**
 * Reading a request the way run_server's Flask code does: `request.get_json(force=True)` (any
 * content type; a body that is not JSON is the route's own 400), `data.get(key, default).strip()`
 * (a field that is not a string crashes the route: 500), `request.args.get(key, "").strip()`.
 */
import type { IncomingMessage } from 'node:http'
import { FlaskCrash } from './flask-reply.js'

const MAX_JSON_BYTES = 16 * 1024 * 1024

export type JsonBody = { readonly ok: true; readonly value: unknown } | { readonly ok: false }

/** The body parsed as JSON whatever its content type, or `ok: false` when it is not JSON. */
export async function readJsonBody(req: IncomingMessage): Promise<JsonBody> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_JSON_BYTES) return { ok: false }
    chunks.push(chunk)
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown }
  } catch {
    return { ok: false }
  }
}

export type Dict = Readonly<Record<string, unknown>>

/** `data.get(...)` needs a dict: a list, null or number body crashes the route. */
export function asDict(value: unknown, what = 'body'): Dict {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FlaskCrash(`${what} is not a dict`)
  }
  return value as Dict
}

/** `data.get(key, fallback).strip()`. */
export function strField(dict: Dict, key: string, fallback = ''): string {
  if (!Object.hasOwn(dict, key)) return fallback
  const value = dict[key]
  if (typeof value !== 'string') throw new FlaskCrash(`${key}.strip() on a non-string`)
  return value.trim()
}

/** `int(data.get(key, 0))`: a number (truncated) or a string of digits. */
export function intField(dict: Dict, key: string): number {
  if (!Object.hasOwn(dict, key)) return 0
  const value = dict[key]
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value)
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return Number(value.trim())
  if (typeof value === 'boolean') return value ? 1 : 0
  throw new FlaskCrash(`int(${key}) on ${JSON.stringify(value)}`)
}

/** `request.args.get(name, "").strip()`: the first value. */
export function queryArg(req: IncomingMessage, name: string): string {
  const url = new URL(req.url ?? '/', 'http://fake.invalid')
  return (url.searchParams.get(name) ?? '').trim()
}

export function pathOf(req: IncomingMessage): string {
  const url = new URL(req.url ?? '/', 'http://fake.invalid')
  return url.pathname
}
