/**
 * The Chinese words the PC side shows: for a task, one status line and the parts it is made of;
 * for a refused request, the error catalog's words for the code it was refused with.
 */
import { HttpError } from '../lib/http-client.js'
import { humanDuration } from '../lib/words.js'
import {
  catalogMessage,
  errorCodeOf,
  isTerminal,
  statusMessage,
  type TaskState,
  type TaskStatusData,
} from '../protocol/index.js'

export { humanDuration }

export const STATE_NAMES: Readonly<Record<TaskState, string>> = {
  queued: '排队中',
  processing: '处理中',
  done: '已完成',
  error: '失败',
  cancelled: '已取消',
  expired: '已过期',
}

/** "512 字节" / "3.4 KB" / "12.0 MB" */
export function humanBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} 字节`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GB`
}

/**
 * One line for the user. The server's `msg` is preferred (it knows whether the GPU is offline,
 * what stage a job is in); our own words fill in when it has none.
 */
export function statusLine(s: TaskStatusData): string {
  const msg = s.msg.trim()
  const percent = Math.round(s.progress)
  switch (s.status) {
    case 'queued': {
      if (msg !== '') return msg.startsWith('⏳') ? msg : `⏳ ${msg}`
      const place = s.queue_position > 0 ? `（第 ${s.queue_position} 位）` : ''
      const eta = s.eta_seconds > 0 ? `，预计${humanDuration(s.eta_seconds)}后开始` : ''
      return `⏳ 排队中${place}${eta}`
    }
    case 'processing':
      if (msg === '') return `⚙️ 处理中 ${percent}%`
      return msg.includes('%') ? `⚙️ ${msg}` : `⚙️ 处理中 ${percent}%：${msg}`
    case 'done':
      return msg !== '' ? msg : '✅ 完成'
    case 'error':
    case 'cancelled':
    case 'expired':
      return msg !== '' ? msg : `❌ ${failureReason(s)}`
  }
}

/** Why a task ended without a result, in Chinese. */
export function failureReason(s: TaskStatusData): string {
  switch (s.status) {
    case 'error':
      return `任务失败：${s.error_msg ?? (s.msg.trim() || '未知错误')}`
    case 'cancelled':
      return s.msg.trim() || '任务已取消'
    case 'expired':
      return s.msg.trim() || '任务排队超时，已过期，请重新提交'
    default:
      return s.msg.trim() || `任务状态：${STATE_NAMES[s.status]}`
  }
}

/**
 * What to tell the user about a failed request: for an error reply, the catalog's words for its
 * code (protocol/errors.ts: the server's own when they are that code's, filled in); for a code
 * the catalog does not know, the server's `msg`; for a reply with no envelope at all (a proxy's
 * page, a 502), words for its HTTP status. No answer at all, or a reply we could not read, keeps
 * the client's own message.
 */
export function requestErrorText(err: HttpError): string {
  if (err.status === 0) return err.message
  const code = errorCodeOf(err.body)
  const msg = msgOf(err.body)
  if (code === null && msg === null && err.status < 400) return err.message
  const said = catalogMessage(code, msg)
  if (said !== null) return said
  const status = statusMessage(err.status)
  return code === null ? status : `${status}（${code}）`
}

function msgOf(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null
  const msg = (body as { msg?: unknown }).msg
  return typeof msg === 'string' && msg.trim() !== '' ? msg : null
}

const BAR_CELLS = 20
const STATE_ICONS: Readonly<Record<TaskState, string>> = {
  queued: '⏳',
  processing: '⚙️',
  done: '✅',
  error: '❌',
  cancelled: '⛔',
  expired: '⌛',
}

/**
 * One progress-bar line: state, bar, percent, the estimate, the server's words.
 * `remainingS`: the run's remaining time as measured by the follower (null: not known yet).
 * `⏳ 排队中 [░░░░░░░░░░░░░░░░░░░░]   0% · 第 1 位 · 预计约 2 分钟后开始 · GPU 服务器正在开机…`
 */
export function progressLine(s: TaskStatusData, remainingS: number | null): string {
  const percent = Math.max(0, Math.min(100, Math.round(s.progress)))
  const filled = Math.round((percent / 100) * BAR_CELLS)
  const bar = `[${'█'.repeat(filled)}${'░'.repeat(BAR_CELLS - filled)}]`
  const parts = [
    `${STATE_ICONS[s.status]} ${STATE_NAMES[s.status]} ${bar} ${String(percent).padStart(3)}%`,
  ]
  if (s.status === 'queued') {
    if (s.queue_position > 0) parts.push(`第 ${s.queue_position} 位`)
    parts.push(s.eta_seconds > 0 ? `预计${humanDuration(s.eta_seconds)}后开始` : '即将开始')
  } else if (s.status === 'processing' && remainingS !== null) {
    parts.push(`预计还需${humanDuration(remainingS)}`)
  }
  const msg = s.msg.trim()
  if (msg !== '' && !isTerminal(s.status)) parts.push(msg)
  return parts.join(' · ')
}
