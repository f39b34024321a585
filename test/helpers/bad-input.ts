/**
 * The bad-input suite's means (test/e2e/bad-input.test.ts): one HTTP case sent as fetch, a form
 * or a streamed upload; the gateway's state as one hash (task rows, transitions, pooled files,
 * assets, files on disk) to prove a bad input changed nothing; a consistency check for the inputs
 * that are accepted (as run_server accepts them); and the tally behind the suite's one line.
 */
import { createHash } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import Database from 'better-sqlite3'
import { uploadMultipart } from '../../lib/http-client.js'
import { TaskState } from '../../protocol/index.js'
import { postForm } from './pc.js'
import { waitFor } from './wait-for.js'

export interface HttpCase {
  readonly name: string
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  readonly path: string
  /** Replaces the default (the PC's API secret). */
  readonly headers?: Record<string, string>
  readonly json?: unknown
  readonly raw?: { readonly body: Buffer | string; readonly type: string }
  /** One file (field `file` unless `fileField`), streamed by node's HTTP client. */
  readonly multipart?: {
    readonly fields: Record<string, string>
    readonly fileField?: string
    readonly filename: string
    readonly bytes: Buffer
  }
  /** Several files in one form (legacy upload, assets): field → file. */
  readonly form?: {
    readonly fields: Record<string, string>
    readonly files: Record<string, { readonly bytes: Buffer; readonly filename: string }>
  }
  readonly status: number
  /** `data.error` of the envelope; `null` for an accepted input (`code` 0). */
  readonly code: string | null
  /** Accepted as run_server accepts it: the state may change (then checked for consistency). */
  readonly accepted?: true
  /** Extra checks of an accepted reply; a string says what is wrong. */
  readonly expect?: (reply: Reply) => string | null
}

export interface Reply {
  readonly status: number
  readonly body: unknown
  readonly headers: Headers | null
  readonly bytes: Buffer | null
}

export async function send(
  base: string,
  c: HttpCase,
  defaultHeaders: Record<string, string>,
): Promise<Reply> {
  if (c.form) {
    const r = await postForm(`${base}${c.path}`, {
      fields: c.form.fields,
      files: c.form.files,
      headers: c.headers ?? defaultHeaders,
    })
    return { status: r.status, body: r.body, headers: r.headers, bytes: null }
  }
  if (c.multipart) {
    const r = await uploadMultipart({
      url: `${base}${c.path}`,
      source: Readable.from([c.multipart.bytes]),
      size: c.multipart.bytes.length,
      fields: c.multipart.fields,
      fileField: c.multipart.fileField ?? 'file',
      filename: c.multipart.filename,
      headers: c.headers ?? defaultHeaders,
      timeoutMs: 15_000,
    })
    return { ...r, headers: null, bytes: null }
  }
  const headers: Record<string, string> = { ...(c.headers ?? defaultHeaders) }
  let body: string | Buffer | undefined
  if (c.raw) {
    headers['content-type'] = c.raw.type
    body = c.raw.body
  } else if (c.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(c.json)
  }
  const res = await fetch(`${base}${c.path}`, {
    method: c.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(15_000),
  })
  const bytes = Buffer.from(await res.arrayBuffer())
  let parsed: unknown = bytes.toString()
  try {
    parsed = JSON.parse(bytes.toString()) as unknown
  } catch {
    // not JSON (a download, or a bare reply)
  }
  return { status: res.status, body: parsed, headers: res.headers, bytes }
}

/** What is wrong with `reply` for case `c`, or null. */
export function verdict(c: HttpCase, reply: Reply): string | null {
  const body = reply.body as { code?: unknown; msg?: unknown; data?: { error?: unknown } } | null
  const envelopeOk =
    typeof body === 'object' &&
    body !== null &&
    typeof body.msg === 'string' &&
    (c.code === null
      ? body.code === 0
      : body.code === c.status && body.data?.error === c.code && /\p{Script=Han}/u.test(body.msg))
  // An accepted download is the file itself, not an envelope.
  const isFile = c.code === null && reply.bytes !== null && typeof reply.body === 'string'
  if (reply.status !== c.status || (!envelopeOk && !isFile)) {
    return `${String(reply.status)} ${JSON.stringify(reply.body).slice(0, 240)}`
  }
  return c.expect?.(reply) ?? null
}

const TABLES = ['tasks', 'task_events', 'files', 'assets'] as const

/** Every task row, transition, pooled file and asset, and every file on disk, as one hash. */
export async function snapshot(dataDir: string): Promise<string> {
  const db = new Database(join(dataDir, 'gateway.sqlite'), { readonly: true })
  try {
    const rows = TABLES.map((table) =>
      JSON.stringify(db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all()),
    )
    const files = (await readdir(join(dataDir, 'files'), { recursive: true })).sort()
    return createHash('sha256').update(rows.join('\n')).update(files.join('\n')).digest('hex')
  } finally {
    db.close()
  }
}

/**
 * The state is whole: SQLite's integrity check passes, every task is in a known state with sane
 * numbers, every pooled file is on disk with its recorded size, and nothing is left staged.
 * Returns what is wrong (empty when whole).
 */
export async function inconsistencies(dataDir: string): Promise<string[]> {
  const wrong: string[] = []
  const db = new Database(join(dataDir, 'gateway.sqlite'), { readonly: true })
  try {
    const check = db.prepare<[], { integrity_check: string }>('PRAGMA integrity_check').all()
    if (check.map((r) => r.integrity_check).join() !== 'ok') wrong.push('integrity_check failed')
    const tasks = db
      .prepare<[], { id: string; state: string; attempt: number; progress: number }>(
        'SELECT id, state, attempt, progress FROM tasks',
      )
      .all()
    for (const t of tasks) {
      if (!TaskState.safeParse(t.state).success) wrong.push(`task ${t.id} in state ${t.state}`)
      if (!(t.attempt >= 1) || !(t.progress >= 0 && t.progress <= 100)) {
        wrong.push(`task ${t.id}: attempt ${String(t.attempt)}, progress ${String(t.progress)}`)
      }
    }
    const files = db
      .prepare<[], { hash: string; size: number }>('SELECT hash, size FROM files')
      .all()
    for (const f of files) {
      const path = join(dataDir, 'files', f.hash.slice(0, 2), f.hash)
      const s = await stat(path).catch(() => null)
      if (s?.size !== f.size) wrong.push(`file ${f.hash}: ${s ? String(s.size) : 'missing'}`)
    }
  } finally {
    db.close()
  }
  const staged = await stagedFiles(dataDir)
  if (staged > 0) wrong.push(`${String(staged)} staged file(s) left in files/tmp`)
  return wrong
}

/** Queued tasks whose current attempt the broker has not acknowledged yet (a write to come). */
export function unpublished(dataDir: string): number {
  const db = new Database(join(dataDir, 'gateway.sqlite'), { readonly: true })
  try {
    const row = db
      .prepare<[], { n: number }>(
        `SELECT COUNT(*) AS n FROM tasks WHERE state = 'queued'
         AND (published_attempt IS NULL OR published_attempt < attempt)`,
      )
      .get()
    return row?.n ?? 0
  } finally {
    db.close()
  }
}

/** Files being received (staged in the pool, not committed yet). */
export async function stagedFiles(dataDir: string): Promise<number> {
  return (await readdir(join(dataDir, 'files', 'tmp')).catch(() => [])).length
}

export function publishedAttempt(dataDir: string, taskId: string): number | null {
  const db = new Database(join(dataDir, 'gateway.sqlite'), { readonly: true })
  try {
    const row = db
      .prepare<[string], { published_attempt: number | null }>(
        'SELECT published_attempt FROM tasks WHERE id = ?',
      )
      .get(taskId)
    return row?.published_attempt ?? null
  } finally {
    db.close()
  }
}

/** The suite's count: every input tried, the answers that were wrong, the states changed. */
export class Tally {
  tried = 0
  readonly wrong: string[] = []
  readonly changed: string[] = []

  line(crashes: number): string {
    return `${String(this.tried)} bad inputs tried, ${String(crashes)} crashes, ${String(this.changed.length)} state changes`
  }
}

/**
 * Send each case and check its answer; a case not accepted must leave the state exactly as it
 * was, an accepted one must leave it consistent (and becomes the new baseline).
 */
export async function runHttpCases(opts: {
  readonly base: string
  readonly dataDir: string
  readonly cases: readonly HttpCase[]
  readonly headers: Record<string, string>
  readonly tally: Tally
}): Promise<void> {
  const { tally } = opts
  let before = await snapshot(opts.dataDir)
  for (const c of opts.cases) {
    let problem: string | null
    try {
      problem = verdict(c, await send(opts.base, c, opts.headers))
    } catch (err) {
      problem = `no answer: ${err instanceof Error ? err.message : String(err)}`
    }
    tally.tried++
    if (problem !== null) tally.wrong.push(`${c.name}: ${problem}`)
    if (c.accepted) {
      // A task it queued is marked published on the broker's PUBACK, after the reply.
      await waitFor(() => unpublished(opts.dataDir) === 0, { what: 'its task published' })
    }
    const after = await snapshot(opts.dataDir)
    if (c.accepted) {
      const broken = await inconsistencies(opts.dataDir)
      if (broken.length > 0) tally.changed.push(`${c.name}: ${broken.join('; ')}`)
    } else if (after !== before) {
      tally.changed.push(c.name)
    }
    before = after
  }
}
