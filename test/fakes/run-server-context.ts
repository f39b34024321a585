/**
 * What every route of the fake run_server works with: its folders, the task table of this process
 * (replaced on restart), the asset records (kept, like its SQLite file), and the hooks the fake's
 * `stats` are counted by.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { RunServerAssets } from './run-server-assets.js'
import type { RunServerDisk } from './run-server-files.js'
import type { RunServerTasks } from './run-server-jobs.js'

export interface RunServerEvents {
  /** An upload_file answered with this hash (stored now or already present). */
  upload(hash: string, size: number): void
  /** A submit (or legacy upload) accepted; `cached` for a cache hit, which runs nothing. */
  submit(entry: { taskId: string; audioHash: string; videoHash: string; cached: boolean }): void
  /** A client asked about a task it knows: its progress (HTTP or WebSocket) or its result. */
  ask(taskId: string, what: 'progress' | 'download'): void
  /** A request refused with 401 `鉴权失败` (wrong or missing secret). */
  refused(): void
}

export interface RunServerContext {
  readonly disk: RunServerDisk
  readonly tasks: RunServerTasks
  readonly assets: RunServerAssets
  readonly resultSize: number
  readonly log: Logger
  readonly events: RunServerEvents
}

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RunServerContext,
) => Promise<void>
