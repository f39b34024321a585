/**
 * The dashboard: asks for the admin token (kept in localStorage), shows GPUs, queue, history and
 * a task's detail, and keeps them current from the event stream without a reload.
 */
import { ApiError, api, optional, saveToken, savedToken } from './api.js'
import { createDetail } from './detail.js'
import { byId, h, show } from './dom.js'
import { logEvent } from './event-log.js'
import { renderGpus } from './gpus.js'
import { createHistory } from './history.js'
import { followEvents } from './live.js'
import { renderQueue, tickQueue } from './queue.js'
import { duration } from './words.js'

/** Views are read again at most this often while events arrive. */
const REFRESH_MS = 700
/** And at least this often (estimates are re-estimated on the server). */
const BACKGROUND_MS = 30_000

const LIVE_WORDS = {
  connecting: '实时：连接中…',
  live: '实时：已连接',
  retrying: '实时：已断开，重连中…',
  refused: '实时：令牌无效',
}

const state = { powerButtons: false, stop: null, timers: [] }

const detail = createDetail({
  dialog: byId('detail'),
  body: byId('detail-body'),
  onError: report,
  onChanged: () => refreshSoon(true),
})

const history = createHistory({
  form: byId('history-filter'),
  list: byId('history'),
  more: byId('history-more'),
  onOpen: (id) => void detail.open(id),
  onError: report,
})

function report(err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    askForToken(err.message)
    return
  }
  const line = byId('notice')
  line.textContent = err instanceof Error ? err.message : String(err)
  line.hidden = false
}

function askForToken(reason) {
  stopLive()
  byId('app').hidden = true
  byId('login').hidden = false
  byId('login-reason').textContent = reason ?? ''
}

async function refreshViews() {
  const [gpus, queue] = await Promise.all([
    api('/api/relay/admin/gpus'),
    api('/api/relay/admin/queue'),
  ])
  renderGpus(byId('gpus'), gpus, {
    powerButtons: state.powerButtons,
    onPower: (gpuId, action) => void power(gpuId, action),
    onOpen: (id) => void detail.open(id),
  })
  renderQueue(byId('queue'), queue, (id) => void detail.open(id))
  byId('notice').hidden = true
}

let historyDue = false
let timer = null
/** Read the views again soon (once for a burst of events); `withHistory` for state changes. */
function refreshSoon(withHistory) {
  historyDue ||= withHistory
  if (timer !== null) return
  timer = setTimeout(() => {
    timer = null
    const doHistory = historyDue
    historyDue = false
    void Promise.all([refreshViews(), doHistory ? history.refresh() : null]).catch(report)
  }, REFRESH_MS)
}

async function power(gpuId, action) {
  const question = action === 'start' ? `确定给 ${gpuId} 开机吗？` : `确定给 ${gpuId} 关机吗？`
  if (!confirm(question)) return
  try {
    await api('/api/relay/power', { method: 'POST', body: { gpu_id: gpuId, action } })
    refreshSoon(false)
  } catch (err) {
    report(err)
  }
}

/** Parts another version of the gateway adds: shown only when they answer. */
async function probeOptional() {
  const powerView = await optional('/api/relay/power').catch(() => null)
  state.powerButtons = powerView !== null
  const estimates = await optional('/api/relay/admin/estimates').catch(() => null)
  const box = byId('estimates')
  box.hidden = estimates === null
  if (estimates !== null) {
    const error = estimates.median_error_s
    show(
      byId('estimates-body'),
      h('p', {}, `样本 ${estimates.samples} 个`),
      h(
        'p',
        {},
        error === null || error === undefined
          ? '还没有足够的数据'
          : `预计开始时间的中位误差：${duration(error)}`,
      ),
    )
  }
}

function stopLive() {
  state.stop?.()
  state.stop = null
  for (const t of state.timers) clearInterval(t)
  state.timers = []
}

async function start() {
  byId('login').hidden = true
  byId('app').hidden = false
  stopLive()
  state.stop = followEvents({
    onEvent: (event) => {
      byId('last-event').textContent = `最新事件 #${event.id}`
      logEvent(byId('events'), event, (id) => void detail.open(id))
      detail.refreshIf(event.taskId)
      refreshSoon(event.kind !== 'progress')
    },
    onStatus: (word) => {
      byId('live').textContent = LIVE_WORDS[word] ?? word
      byId('live').dataset.status = word
      if (word === 'refused') askForToken('令牌无效或不是管理员令牌')
      // Back after a cut: read everything again (the stream itself resumes where it stopped).
      if (word === 'live') refreshSoon(true)
    },
  })
  state.timers.push(setInterval(() => tickQueue(byId('queue')), 1_000))
  state.timers.push(setInterval(() => refreshSoon(true), BACKGROUND_MS))
  try {
    await probeOptional()
    await Promise.all([refreshViews(), history.reload()])
  } catch (err) {
    report(err)
  }
}

byId('login-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const token = String(new FormData(e.target).get('token') ?? '').trim()
  if (token === '') return
  saveToken(token)
  void start()
})
byId('logout').addEventListener('click', () => {
  saveToken('')
  askForToken('已退出')
})
byId('history-filter').addEventListener('submit', (e) => {
  e.preventDefault()
  void history.reload()
})
byId('history-more').addEventListener('click', () => void history.more())
byId('detail-close').addEventListener('click', () => byId('detail').close())
byId('open-task').addEventListener('submit', (e) => {
  e.preventDefault()
  const id = String(new FormData(e.target).get('task_id') ?? '').trim()
  if (id !== '') void detail.open(id)
})

if (savedToken() === '') askForToken('')
else void start()
