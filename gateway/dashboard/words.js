/** The page's words (Simplified Chinese) and how times and sizes are shown. */

export const STATE_WORDS = {
  queued: '排队中',
  processing: '处理中',
  done: '已完成',
  error: '失败',
  cancelled: '已取消',
  expired: '已过期',
}

export const EVENT_WORDS = {
  submitted: '已提交',
  'cache-hit': '命中缓存',
  claimed: 'GPU 已领取',
  progress: '进度',
  'result-stored': '结果已上传',
  done: '完成',
  failed: '失败',
  requeued: '重新排队',
  cancelled: '已取消',
  expired: '已过期',
  retried: '已重试',
  purged: '已清除',
}

export const POWER_WORDS = {
  off: '已关机',
  booting: '开机中',
  online: '运行中',
  idle: '空闲',
  'shutting-down': '关机中',
}

export const STAGE_WORDS = {
  preparing: '传输文件',
  waiting: 'GPU 排队',
  starting: '开始处理',
  rendering: '合成视频',
  encoding: '编码视频',
}

export const SERVICE_WORDS = {
  ready: '服务就绪',
  loading: '模型加载中',
  unreachable: '服务无响应',
}

/** A word from one of the tables above, or the raw value when the table does not know it. */
export function word(table, key) {
  if (key === null || key === undefined) return '—'
  return Object.hasOwn(table, key) ? table[key] : String(key)
}

/** `2 小时 5 分`, `3 分 20 秒`, `12 秒`. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s} 秒`
  const m = Math.floor(s / 60)
  if (m < 60) return s % 60 === 0 ? `${m} 分钟` : `${m} 分 ${s % 60} 秒`
  const h = Math.floor(m / 60)
  if (h < 48) return m % 60 === 0 ? `${h} 小时` : `${h} 小时 ${m % 60} 分`
  return `${Math.floor(h / 24)} 天`
}

/** `3 分钟前` for a past ISO time; `—` for none. */
export function ago(iso, now = Date.now()) {
  if (!iso) return '—'
  return `${duration((now - Date.parse(iso)) / 1000)}前`
}

/** Local date and time, `2026-03-01 18:05:09`. */
export function clock(iso) {
  if (!iso) return '—'
  const d = new Date(iso)
  const pad = (n) => String(n).padStart(2, '0')
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
  return `${date} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** Bytes as `1.5 MB`. */
export function bytes(n) {
  if (n === null || n === undefined) return '—'
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`
  return `${(n / 1024 ** 3).toFixed(2)} GB`
}

/** The first characters of an id, enough to tell tasks apart on a small screen. */
export function shortId(id) {
  return String(id).slice(0, 8)
}
