/** The gateway's SQLite database: the single source of truth for tasks (docs/design.md §3). */
import type Database from 'better-sqlite3'
import { migrate } from '../lib/sqlite-migrate.js'
import { openWalDatabase } from '../lib/sqlite-open.js'

export type Db = Database.Database

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT,
    source TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    gpu_id TEXT,
    published_attempt INTEGER NOT NULL DEFAULT 0,
    audio_hash TEXT NOT NULL, audio_ext TEXT NOT NULL, audio_size INTEGER NOT NULL,
    video_hash TEXT NOT NULL, video_ext TEXT NOT NULL, video_size INTEGER NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT,
    stage_message TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    result_hash TEXT, result_ext TEXT, result_size INTEGER,
    error_msg TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    claimed_at INTEGER,
    finished_at INTEGER,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX tasks_by_state ON tasks (state, gpu_id, seq);
  CREATE INDEX tasks_by_owner ON tasks (owner, seq);

  CREATE TABLE task_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    gpu_id TEXT,
    note TEXT
  );
  CREATE INDEX task_transitions_by_task ON task_transitions (task_id, id);

  CREATE TABLE files (
    hash TEXT PRIMARY KEY,
    ext TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );

  CREATE TABLE gpus (
    id TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,
    online INTEGER NOT NULL,
    since INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    capacity INTEGER NOT NULL DEFAULT 1
  );
  `,
  // The bridge connection (epoch) that claimed the task: a later birth that does not hold it
  // proves it was lost; a birth of the same epoch cannot.
  `ALTER TABLE tasks ADD COLUMN claim_epoch INTEGER;`,
  // The clocks and idempotent submit: when progress last moved (stall timeout), the caller's
  // request key, and when a pooled file was last asked for (retention).
  `
  ALTER TABLE tasks ADD COLUMN progress_at INTEGER;
  ALTER TABLE tasks ADD COLUMN request_key TEXT;
  CREATE UNIQUE INDEX tasks_by_request ON tasks (owner, request_key) WHERE request_key IS NOT NULL;
  ALTER TABLE files ADD COLUMN last_used_at INTEGER;
  UPDATE files SET last_used_at = created_at;
  `,
  // One request key per owner, tasks without an owner sharing one namespace (NULL is not equal
  // to NULL in a unique index).
  `
  DROP INDEX tasks_by_request;
  CREATE UNIQUE INDEX tasks_by_request ON tasks (COALESCE(owner, ''), request_key)
    WHERE request_key IS NOT NULL;
  `,
  // The run-time estimate reads the latest finished tasks on every status request.
  `CREATE INDEX tasks_by_finish ON tasks (state, finished_at);`,
  // Assets (run_server's /api/asset/*): voices and avatars an owner keeps in the pool for 30
  // days, one row per (license, type, md5, ext). Times in ms like every other column here.
  `
  CREATE TABLE assets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    license_key TEXT NOT NULL,
    asset_type TEXT NOT NULL,
    name TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    file_ext TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX assets_by_file ON assets (license_key, asset_type, file_hash, file_ext);
  CREATE INDEX assets_by_owner ON assets (license_key, created_at);
  CREATE INDEX assets_by_hash ON assets (file_hash, expires_at);
  `,
  // Frames rendered and expected, as run_server reports them (the PC app shows "i/N 帧").
  `
  ALTER TABLE tasks ADD COLUMN current_frame INTEGER;
  ALTER TABLE tasks ADD COLUMN total_frames INTEGER;
  `,
  // The relay clock (relay-clock.ts, docs/design.md §3.8): ms that advance only while the gateway
  // runs. It starts at the wall clock of this migration, so the wall times already recorded are
  // its times too. Durations (queue TTL, execution and stall timeouts, retention) are measured
  // on the rc_* columns; the wall columns stay for display. The stored_result_* columns hold the
  // one result a GPU handed over for an attempt, and result_type the content type it is served with.
  `
  CREATE TABLE relay_clock (id INTEGER PRIMARY KEY CHECK (id = 1), ms INTEGER NOT NULL);
  INSERT INTO relay_clock (id, ms)
    VALUES (1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
  ALTER TABLE tasks ADD COLUMN rc_created_at INTEGER;
  ALTER TABLE tasks ADD COLUMN rc_expires_at INTEGER;
  ALTER TABLE tasks ADD COLUMN rc_claimed_at INTEGER;
  ALTER TABLE tasks ADD COLUMN rc_progress_at INTEGER;
  ALTER TABLE tasks ADD COLUMN rc_finished_at INTEGER;
  UPDATE tasks SET rc_created_at = created_at, rc_expires_at = expires_at,
    rc_claimed_at = claimed_at, rc_progress_at = progress_at, rc_finished_at = finished_at;
  CREATE INDEX tasks_by_rc_finish ON tasks (state, rc_finished_at);
  ALTER TABLE tasks ADD COLUMN stored_result_attempt INTEGER;
  ALTER TABLE tasks ADD COLUMN stored_result_hash TEXT;
  ALTER TABLE tasks ADD COLUMN stored_result_ext TEXT;
  ALTER TABLE tasks ADD COLUMN stored_result_size INTEGER;
  ALTER TABLE tasks ADD COLUMN stored_result_type TEXT;
  ALTER TABLE tasks ADD COLUMN result_type TEXT;
  `,
  // The task event outbox (task-outbox.ts, docs/design.md §3.7): one row per change of a task,
  // committed with the change. Its id is the event stream's cursor (`Last-Event-ID`). The task
  // type (docs/design.md §10): bridges are offered only the types they run. The transition log
  // kept so far becomes the first events.
  `
  CREATE TABLE task_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    rc_at INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    from_state TEXT,
    to_state TEXT,
    gpu_id TEXT,
    data TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX task_events_by_task ON task_events (task_id, id);
  INSERT INTO task_events (task_id, kind, at, rc_at, attempt, from_state, to_state, gpu_id, data)
    SELECT task_id,
      CASE
        WHEN from_state IS NULL THEN 'submitted'
        WHEN to_state = 'processing' THEN 'claimed'
        WHEN to_state = 'queued' AND from_state = 'error' THEN 'retried'
        WHEN to_state = 'queued' THEN 'requeued'
        WHEN to_state = 'done' AND note LIKE 'cache hit%' THEN 'cache-hit'
        WHEN to_state = 'error' THEN 'failed'
        ELSE to_state
      END,
      at, at, attempt, from_state, to_state, gpu_id,
      CASE WHEN note IS NULL THEN '{}' ELSE json_object('note', note) END
    FROM task_transitions ORDER BY id;
  ALTER TABLE tasks ADD COLUMN type TEXT NOT NULL DEFAULT 'heygem';
  `,
  // Stages in the relay's own words (protocol/common.ts Stage, docs/design.md §8) instead of
  // run_server's: rows and progress events stored before keep their meaning under the new names.
  `
  UPDATE tasks SET stage = CASE stage
      WHEN 'queued' THEN 'waiting'
      WHEN 'processing' THEN 'starting'
      WHEN 'synthesizing' THEN 'rendering'
    END
    WHERE stage IN ('queued', 'processing', 'synthesizing');
  UPDATE task_events SET data = json_set(data, '$.stage', CASE json_extract(data, '$.stage')
      WHEN 'queued' THEN 'waiting'
      WHEN 'processing' THEN 'starting'
      WHEN 'synthesizing' THEN 'rendering'
    END)
    WHERE json_valid(data)
      AND json_extract(data, '$.stage') IN ('queued', 'processing', 'synthesizing');
  `,
  // The outbox is the only record of a task's changes now (task-lifecycle.ts writes it): the
  // transition log it was copied from goes. Claims look for the oldest queued task of a type.
  `
  DROP TABLE task_transitions;
  CREATE INDEX tasks_queued_by_type ON tasks (state, type, seq);
  `,
  // issue-10 power: each power request (gateway/power/power-store.ts), its channels and outcome;
  // a start request also when its GPU became ready (rc_ready_at), so boot times can be learned.
  `
  CREATE TABLE power_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    gpu_id TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    channel TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    at INTEGER NOT NULL,
    rc_at INTEGER NOT NULL,
    finished_at INTEGER,
    ready_at INTEGER,
    boot_ms INTEGER
  );
  CREATE INDEX power_requests_boots ON power_requests (action, boot_ms);
  `,
  // issue-10 estimates: an input's length where its header tells (WAV), the start estimated at
  // submit and the first claim (relay ms), so run times per audio second and how good the
  // estimates were can be read; the accuracy view reads the newest measured starts by index.
  `
  ALTER TABLE files ADD COLUMN audio_ms INTEGER;
  ALTER TABLE tasks ADD COLUMN est_start_s INTEGER;
  ALTER TABLE tasks ADD COLUMN rc_started_at INTEGER;
  CREATE INDEX tasks_by_measured_start ON tasks (rc_started_at)
    WHERE rc_started_at IS NOT NULL AND est_start_s IS NOT NULL;
  `,
  // issue-10 webhooks: the URL a submit asked to be told at when its task ends; one message per
  // final event to deliver (gateway/webhooks/webhook-store.ts), one delivery row per attempt,
  // and the outbox id up to which events were read (starting at the newest: older tasks have
  // no webhook).
  `
  ALTER TABLE tasks ADD COLUMN webhook_url TEXT;
  CREATE TABLE webhook_messages (
    event_id INTEGER PRIMARY KEY,
    msg_id TEXT NOT NULL UNIQUE,
    task_id TEXT NOT NULL,
    url TEXT NOT NULL,
    receiver TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_at INTEGER
  );
  CREATE INDEX webhook_messages_due ON webhook_messages (state, next_at);
  CREATE INDEX webhook_messages_by_task ON webhook_messages (task_id);
  CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    url TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    error TEXT,
    at INTEGER NOT NULL,
    next_at INTEGER
  );
  CREATE INDEX webhook_deliveries_by_task ON webhook_deliveries (task_id, id);
  CREATE TABLE webhook_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), event_id INTEGER NOT NULL);
  INSERT INTO webhook_cursor (id, event_id) SELECT 1, COALESCE(MAX(id), 0) FROM task_events;
  `,
  // issue-10 dashboard: the history is filtered by state and by submit time and read newest
  // first, a page at a time (admin-reads.ts): indexes, so neither filter scans the table.
  `
  CREATE INDEX tasks_by_state_seq ON tasks (state, seq);
  CREATE INDEX tasks_by_created ON tasks (created_at);
  `,
]

export function openDb(path: string): Db {
  // Opens on a full disk too (lib/sqlite-open.ts): the gateway starts and refuses only writes.
  const { db } = openWalDatabase(path, [
    'synchronous = FULL',
    'busy_timeout = 5000',
    'foreign_keys = ON',
  ])
  migrate(db, MIGRATIONS)
  return db
}
