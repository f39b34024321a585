/**
 * The relay's stages in run_server's words (docs/design.md §7): the compatible progress, queue,
 * WebSocket and download replies answer with run_server's `status`, as the unchanged PC and H5
 * apps expect, while the relay stores and reports its own `Stage` (the adapters map the services'
 * words to it, docs/design.md §8). Also the owner's Chinese words for a stage.
 */
import type { TaskRow } from './task-store.js'
import type { RunServerStatus, Stage } from '../protocol/index.js'

/**
 * run_server's word for a running task at each stage. It has no word for inputs on the move or a
 * job in the service's own queue (a claimed task is running as far as its owner is concerned), so
 * everything before the frames is `processing`, as run_server says while it preprocesses.
 */
export const RUN_SERVER_STATUS_OF_STAGE: Readonly<Record<Stage, RunServerStatus>> = {
  preparing: 'processing',
  waiting: 'processing',
  starting: 'processing',
  rendering: 'synthesizing',
  encoding: 'encoding',
}

/** run_server's `status` for a task: failed, cancelled and expired tasks are all `error`. */
export function runServerStatus(row: Pick<TaskRow, 'state' | 'stage'>): RunServerStatus {
  switch (row.state) {
    case 'queued':
      return 'queued'
    case 'processing':
      return RUN_SERVER_STATUS_OF_STAGE[row.stage ?? 'preparing']
    case 'done':
      return 'done'
    case 'error':
    case 'cancelled':
    case 'expired':
      return 'error'
  }
}

/** What the owner reads for a running task whose service sent no words of its own. */
export function stageText(stage: Stage | null, progress: number): string {
  switch (stage) {
    case 'preparing':
      return '正在把文件传到 GPU 服务器'
    case 'waiting':
      return 'GPU 服务器排队中'
    case 'rendering':
      return `正在合成视频（${Math.round(progress)}%）`
    case 'encoding':
      return '正在编码视频'
    case 'starting':
    case null:
      return `正在处理（${Math.round(progress)}%）`
  }
}
