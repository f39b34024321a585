import { randomUUID } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { MIGRATIONS, openDb } from '../../gateway/db.js'
import {
  RUN_SERVER_STATUS_OF_STAGE,
  runServerStatus,
  stageText,
} from '../../gateway/run-server-status.js'
import { RunServerStatus, Stage, TaskState } from '../../protocol/index.js'
import { startTestGateway } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'

/** The migration that renamed run_server's words in stored stages to the relay's. */
const STAGE_WORDS = MIGRATIONS.findIndex((sql) => sql.includes("'synthesizing' THEN 'rendering'"))

/** A gateway database as it was just before the stage words changed, holding `rows`. */
function databaseBeforeStageWords(
  path: string,
  rows: readonly { id: string; state: string; stage: string | null; owner?: string }[],
): void {
  expect(STAGE_WORDS).toBeGreaterThan(0)
  const db = new Database(path)
  try {
    for (const sql of MIGRATIONS.slice(0, STAGE_WORDS)) db.exec(sql)
    db.pragma(`user_version = ${String(STAGE_WORDS)}`)
    const now = Date.now()
    const insert = db.prepare(
      `INSERT INTO tasks (id, owner, source, state, gpu_id, audio_hash, audio_ext, audio_size,
         video_hash, video_ext, video_size, progress, stage, created_at, updated_at, claimed_at,
         expires_at, rc_created_at, rc_expires_at, rc_claimed_at, progress_at, rc_progress_at,
         attempt, published_attempt)
       VALUES (?, ?, 'heygem-api', ?, 'gpu-1', ?, '.wav', 10, ?, '.mp4', 10, 40, ?, ?, ?, ?, ?, ?,
         ?, ?, ?, ?, 1, 1)`,
    )
    const event = db.prepare(
      `INSERT INTO task_events (task_id, kind, at, rc_at, attempt, data)
       VALUES (?, 'progress', ?, ?, 1, ?)`,
    )
    for (const row of rows) {
      insert.run(
        row.id,
        row.owner ?? null,
        row.state,
        'a'.repeat(32),
        'b'.repeat(32),
        row.stage,
        now,
        now,
        now,
        now + 3_600_000,
        now,
        now + 3_600_000,
        now,
        now,
        now,
      )
      event.run(row.id, now, now, JSON.stringify({ progress: 40, stage: row.stage, message: 'x' }))
    }
    event.run(rows[0]?.id ?? 'none', now, now, '{"note":"no stage here"}')
  } finally {
    db.close()
  }
}

describe("the relay's stages in run_server's words", () => {
  it('answers run_server’s status for every stage of a running task and every task state', () => {
    for (const stage of Stage.options) {
      const status = runServerStatus({ state: 'processing', stage })
      expect(RunServerStatus.options).toContain(status)
      expect(stageText(stage, 42)).not.toBe('')
    }
    expect(RUN_SERVER_STATUS_OF_STAGE).toEqual({
      preparing: 'processing',
      waiting: 'processing',
      starting: 'processing',
      rendering: 'synthesizing',
      encoding: 'encoding',
    })
    expect(runServerStatus({ state: 'processing', stage: null })).toBe('processing')
    const byState = Object.fromEntries(
      TaskState.options.map((state) => [state, runServerStatus({ state, stage: null })]),
    )
    expect(byState).toEqual({
      queued: 'queued',
      processing: 'processing',
      done: 'done',
      error: 'error',
      cancelled: 'error',
      expired: 'error',
    })
    expect(stageText('rendering', 42.4)).toBe('正在合成视频（42%）')
  })

  it("renames run_server's words in stored stages and progress events, and nothing else", async () => {
    const dir = await tempDir('stage-words')
    const path = join(dir, 'gateway.sqlite')
    const words = ['queued', 'processing', 'synthesizing', 'encoding', 'preparing', null]
    const rows = words.map((stage) => ({ id: randomUUID(), state: 'processing', stage }))
    databaseBeforeStageWords(path, rows)
    const db = openDb(path)
    try {
      const stageOf = db.prepare<[string], { stage: string | null }>(
        'SELECT stage FROM tasks WHERE id = ?',
      )
      const dataOf = db.prepare<[string], { data: string }>(
        "SELECT data FROM task_events WHERE task_id = ? AND data LIKE '%progress%'",
      )
      const after = rows.map((r) => stageOf.get(r.id)?.stage)
      expect(after).toEqual(['waiting', 'starting', 'rendering', 'encoding', 'preparing', null])
      const events = rows.map((r) => JSON.parse(dataOf.get(r.id)?.data ?? '{}') as unknown)
      expect(events.map((e) => (e as { stage?: unknown }).stage ?? null)).toEqual(after)
      expect(events[2]).toEqual({ progress: 40, stage: 'rendering', message: 'x' })
      const untouched = db
        .prepare<[], { data: string }>("SELECT data FROM task_events WHERE data LIKE '%note%'")
        .get()
      expect(untouched?.data).toBe('{"note":"no stage here"}')
    } finally {
      db.close()
    }
  })

  it('reports a task stored mid-synthesis before the rename as synthesizing, as run_server does', async () => {
    const dir = await tempDir('stage-words-gateway')
    mkdirSync(join(dir, 'gateway'), { recursive: true })
    const rendering = randomUUID()
    const waiting = randomUUID()
    databaseBeforeStageWords(join(dir, 'gateway', 'gateway.sqlite'), [
      { id: rendering, state: 'processing', stage: 'synthesizing', owner: 'K-stage' },
      { id: waiting, state: 'processing', stage: 'queued', owner: 'K-stage' },
    ])
    const gateway = await startTestGateway(dir)
    const progress = async (id: string): Promise<{ status?: string; progress?: number }> => {
      const res = await fetch(`${gateway.url}/api/heygem/progress?task_id=${id}`, {
        headers: { 'x-license-key': 'K-stage' },
      })
      const body = (await res.json()) as { data?: { status?: string; progress?: number } }
      return body.data ?? {}
    }
    expect(await progress(rendering)).toMatchObject({ status: 'synthesizing', progress: 40 })
    expect(await progress(waiting)).toMatchObject({ status: 'processing' })
    const queue = await fetch(`${gateway.url}/api/heygem/queue?license_key=K-stage`)
    const listed = (
      (await queue.json()) as { data: { tasks: { task_id: string; status: string }[] } }
    ).data.tasks
    expect(Object.fromEntries(listed.map((t) => [t.task_id, t.status]))).toEqual({
      [rendering]: 'synthesizing',
      [waiting]: 'processing',
    })
  })
})
