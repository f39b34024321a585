/**
 * The history section: filters (owner, state, submit date), newest first, a page at a time
 * ("加载更多"). `refresh()` reloads what is shown (as many rows as are loaded) in place.
 */
import { api } from './api.js'
import { h, opens, show } from './dom.js'
import { STATE_WORDS, clock, shortId, word } from './words.js'

const PAGE = 50
const MAX_ROWS = 200

export function createHistory({ form, list, more, onOpen, onError }) {
  let rows = []
  let next = null

  const query = (limit, before) => {
    const data = new FormData(form)
    const params = new URLSearchParams({ limit: String(limit) })
    const owner = String(data.get('owner') ?? '').trim()
    const state = String(data.get('state') ?? '')
    const from = String(data.get('from') ?? '')
    const to = String(data.get('to') ?? '')
    if (owner !== '') params.set('owner', owner)
    if (state !== '') params.set('state', state)
    // Dates are local days: from its midnight to the next day's.
    if (from !== '') params.set('from', String(new Date(`${from}T00:00:00`).getTime()))
    if (to !== '') params.set('to', String(new Date(`${to}T00:00:00`).getTime() + 86_400_000))
    if (before !== null) params.set('before', String(before))
    return `/api/relay/admin/tasks?${params.toString()}`
  }

  const render = () => {
    if (rows.length === 0) {
      show(list, h('p', { class: 'empty' }, '没有符合条件的任务'))
    } else {
      show(
        list,
        h(
          'ul',
          { class: 'rows' },
          rows.map((t) => line(t, onOpen)),
        ),
      )
    }
    more.hidden = next === null
  }

  const load = async (limit, before) => {
    try {
      const data = await api(query(limit, before))
      return data
    } catch (err) {
      onError(err)
      return null
    }
  }

  return {
    /** From the first page again (the filters changed). */
    async reload() {
      const data = await load(PAGE, null)
      if (!data) return
      rows = data.tasks
      next = data.next_before
      render()
    },
    /** The next, older page. */
    async more() {
      if (next === null) return
      const data = await load(PAGE, next)
      if (!data) return
      rows = [...rows, ...data.tasks]
      next = data.next_before
      render()
    },
    /** What is shown, fetched again (live updates). */
    async refresh() {
      const data = await load(Math.min(MAX_ROWS, Math.max(PAGE, rows.length)), null)
      if (!data) return
      rows = data.tasks
      next = data.next_before
      render()
    },
  }
}

function line(t, onOpen) {
  return h(
    'li',
    {
      class: 'row',
      'data-task-id': t.task_id,
      'data-state': t.state,
      ...opens(() => onOpen(t.task_id)),
    },
    h('span', { class: 'id' }, shortId(t.task_id)),
    h('span', { class: `state ${t.state}` }, word(STATE_WORDS, t.state)),
    h('span', { class: 'owner' }, t.owner ?? '（无归属）'),
    h('span', { class: 'time' }, clock(t.created_at)),
    h('span', {}, t.gpu_id ?? ''),
    t.state === 'processing' ? h('span', {}, `${Math.round(t.progress)}%`) : null,
    t.error_msg ? h('span', { class: 'error-text' }, t.error_msg) : null,
  )
}
