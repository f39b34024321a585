/** The queue section: what runs now, then each queued task with its place, age and start estimate. */
import { h, opens, show } from './dom.js'
import { STAGE_WORDS, ago, clock, duration, shortId, word } from './words.js'

export function renderQueue(el, data, onOpen) {
  const { summary, running, queued } = data
  const head = h(
    'p',
    { class: 'summary' },
    `排队 ${data.queued_total} 个 · 运行 ${summary.processing} 个 · 就绪 GPU ${summary.gpusReady}/${summary.gpusOnline}（在线）`,
  )
  const now = running.length
    ? h(
        'ul',
        { class: 'rows' },
        running.map((t) =>
          h(
            'li',
            {
              class: 'row',
              'data-task-id': t.task_id,
              'data-state': t.state,
              ...opens(() => onOpen(t.task_id)),
            },
            h('span', { class: 'id' }, shortId(t.task_id)),
            h('span', { class: 'state processing' }, '处理中'),
            h('span', {}, `${t.gpu_id ?? ''} · ${word(STAGE_WORDS, t.stage)}`),
            h('progress', { max: 100, value: t.progress }),
            h('span', {}, `${Math.round(t.progress)}%`),
            h('span', { class: 'owner' }, t.owner ?? '（无归属）'),
          ),
        ),
      )
    : h('p', { class: 'empty' }, '没有正在运行的任务')
  const waiting = queued.length
    ? h(
        'ul',
        { class: 'rows' },
        queued.map((t) =>
          h(
            'li',
            {
              class: 'row',
              'data-task-id': t.task_id,
              'data-state': t.state,
              ...opens(() => onOpen(t.task_id)),
            },
            h('span', { class: 'pos' }, `第 ${t.position} 位`),
            h('span', { class: 'id' }, shortId(t.task_id)),
            h('span', { class: 'state queued' }, '排队中'),
            h('span', { class: 'owner' }, t.owner ?? '（无归属）'),
            h(
              'span',
              { class: 'age', 'data-since': t.created_at },
              `已等 ${ago(t.created_at).replace(/前$/, '')}`,
            ),
            h(
              'span',
              { class: 'eta', 'data-start': t.estimated_start, title: clock(t.estimated_start) },
              etaText(t.estimated_start),
            ),
          ),
        ),
      )
    : h('p', { class: 'empty' }, '队列为空')
  show(el, head, h('h3', {}, '正在运行'), now, h('h3', {}, '排队中'), waiting)
}

/** `预计 3 分 20 秒后开始`, counting down to the estimated start. */
export function etaText(startIso, now = Date.now()) {
  const left = (Date.parse(startIso) - now) / 1000
  return left > 1 ? `预计 ${duration(left)}后开始` : '预计即将开始'
}

/** Once a second: the waits and estimates move without a new answer from the server. */
export function tickQueue(el, now = Date.now()) {
  for (const eta of el.querySelectorAll('[data-start]')) {
    eta.textContent = etaText(eta.getAttribute('data-start'), now)
  }
  for (const age of el.querySelectorAll('[data-since]')) {
    age.textContent = `已等 ${ago(age.getAttribute('data-since'), now).replace(/前$/, '')}`
  }
}
