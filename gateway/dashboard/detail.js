/**
 * A task's detail, in a dialog: state and words, inputs, result (downloaded with the token in a
 * header), error, the timeline (every transition and event with its time and GPU), webhook
 * deliveries when the gateway sends webhooks, and the actions (cancel, retry a failed one).
 */
import { api, downloadResult } from './api.js'
import { h, show } from './dom.js'
import { EVENT_WORDS, STAGE_WORDS, STATE_WORDS, bytes, clock, word } from './words.js'

/** The open task is read again at most this often while its events arrive. */
const RELOAD_MS = 500

export function createDetail({ dialog, body, onError, onChanged }) {
  let openId = null
  let reloading = null

  const act = async (taskId, action, question) => {
    if (!confirm(question)) return
    try {
      const data = await api(`/api/relay/admin/tasks/${taskId}/${action}`, { method: 'POST' })
      render(data)
      onChanged()
    } catch (err) {
      onError(err)
    }
  }

  const render = (data) => {
    const t = data.task
    show(
      body,
      h('h2', {}, '任务 ', h('code', {}, t.task_id)),
      h(
        'p',
        { class: 'message', 'data-state': t.state },
        h('span', { class: `state ${t.state}` }, word(STATE_WORDS, t.state)),
        ` ${t.message}`,
      ),
      h(
        'dl',
        {},
        h('dt', {}, '归属'),
        h('dd', {}, t.owner ?? '（无归属）'),
        h('dt', {}, '提交于'),
        h('dd', {}, clock(t.created_at)),
        h('dt', {}, '第几次'),
        h('dd', {}, String(t.attempt)),
        h('dt', {}, 'GPU'),
        h('dd', {}, t.gpu_id ?? '—'),
        h('dt', {}, '音频'),
        h(
          'dd',
          {},
          h('code', {}, t.inputs.audio.hash),
          ` ${t.inputs.audio.ext} ${bytes(t.inputs.audio.size)}`,
        ),
        h('dt', {}, '视频'),
        h(
          'dd',
          {},
          h('code', {}, t.inputs.video.hash),
          ` ${t.inputs.video.ext} ${bytes(t.inputs.video.size)}`,
        ),
        t.result_url ? [h('dt', {}, '结果'), h('dd', {}, resultButton(t))] : null,
        t.failure ? [h('dt', {}, '原因'), h('dd', { class: 'error-text' }, t.failure)] : null,
      ),
      h(
        'div',
        { class: 'actions' },
        t.state === 'queued' || t.state === 'processing'
          ? h(
              'button',
              {
                type: 'button',
                class: 'danger',
                'data-action': 'cancel',
                onclick: () => act(t.task_id, 'cancel', '确定取消这个任务吗？'),
              },
              '取消任务',
            )
          : null,
        t.state === 'error'
          ? h(
              'button',
              {
                type: 'button',
                'data-action': 'retry',
                onclick: () => act(t.task_id, 'retry', '确定重试这个任务吗？'),
              },
              '重试',
            )
          : null,
      ),
      h('h3', {}, '时间线'),
      h('ol', { class: 'timeline' }, timelineLines(data.timeline)),
      data.webhooks === null ? null : webhooks(data.webhooks),
    )
  }

  const resultButton = (t) =>
    h(
      'button',
      {
        type: 'button',
        class: 'link',
        onclick: () => downloadResult(t.result_url, `${t.task_id}.mp4`).catch(onError),
      },
      `下载结果（${bytes(t.result?.size)}）`,
    )

  const load = async (taskId) => {
    try {
      const data = await api(`/api/relay/admin/tasks/${taskId}`)
      // Another task may have been opened meanwhile.
      if (openId === taskId) render(data)
    } catch (err) {
      onError(err)
    }
  }

  dialog.addEventListener('close', () => {
    openId = null
  })

  return {
    async open(taskId) {
      openId = taskId
      show(body, h('p', {}, '加载中…'))
      if (!dialog.open) dialog.showModal()
      await load(taskId)
    },
    /** The open task changed (an event): read it again (once for a burst of events). */
    refreshIf(taskId) {
      if (openId === null || openId !== taskId || reloading !== null) return
      reloading = setTimeout(() => {
        reloading = null
        if (openId !== null) void load(openId)
      }, RELOAD_MS)
    },
  }
}

/** Every event, runs of progress events folded into one line that opens to show them. */
function timelineLines(events) {
  const lines = []
  let run = []
  const flush = () => {
    if (run.length === 0) return
    const first = run[0]
    const last = run[run.length - 1]
    const span = `${Math.round(first.progress ?? 0)}% → ${Math.round(last.progress ?? 0)}%`
    lines.push(
      h(
        'li',
        { class: 'minor progress-run' },
        h(
          'details',
          {},
          h('summary', {}, `${clock(first.at)} 进度 ${span}（${run.length} 条）`),
          h('ol', { class: 'timeline' }, run.map(eventLine)),
        ),
      ),
    )
    run = []
  }
  for (const e of events) {
    if (e.kind === 'progress') {
      run.push(e)
    } else {
      flush()
      lines.push(eventLine(e))
    }
  }
  flush()
  return lines
}

function eventLine(e) {
  const move =
    e.from && e.state && e.from !== e.state
      ? `${word(STATE_WORDS, e.from)} → ${word(STATE_WORDS, e.state)}`
      : ''
  const progress = e.progress === null ? '' : `${Math.round(e.progress)}%`
  return h(
    'li',
    { class: e.kind === 'progress' ? 'minor' : '', 'data-kind': e.kind },
    h('time', {}, clock(e.at)),
    h('strong', {}, word(EVENT_WORDS, e.kind)),
    move ? h('span', {}, move) : null,
    e.gpu_id ? h('span', {}, e.gpu_id) : null,
    h('span', {}, `第 ${e.attempt} 次`),
    e.stage ? h('span', {}, word(STAGE_WORDS, e.stage)) : null,
    progress ? h('span', {}, progress) : null,
    e.note ? h('span', { class: 'note' }, e.note) : null,
  )
}

function webhooks(deliveries) {
  return [
    h('h3', {}, 'Webhook 投递'),
    deliveries.length === 0
      ? h('p', { class: 'empty' }, '还没有投递')
      : h(
          'ol',
          { class: 'timeline' },
          deliveries.map((d) =>
            h(
              'li',
              {},
              h('time', {}, clock(typeof d.at === 'number' ? new Date(d.at).toISOString() : d.at)),
              h('strong', {}, String(d.status ?? '')),
              h('span', {}, `第 ${d.attempt ?? '?'} 次`),
              d.http_status ? h('span', {}, `HTTP ${d.http_status}`) : null,
              d.error ? h('span', { class: 'error-text' }, d.error) : null,
              h('span', { class: 'note' }, d.url ?? ''),
            ),
          ),
        ),
  ]
}
