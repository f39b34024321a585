/** The latest task events as they arrive from the stream, newest on top (the last 50 kept). */
import { h } from './dom.js'
import { EVENT_WORDS, STATE_WORDS, clock, shortId, word } from './words.js'

const KEPT = 50

export function logEvent(list, event, onOpen) {
  const move = event.state ? word(STATE_WORDS, event.state) : ''
  const progress = event.progress === undefined ? '' : ` ${Math.round(event.progress)}%`
  list.prepend(
    h(
      'li',
      { 'data-event-id': event.id, 'data-kind': event.kind },
      h('time', {}, clock(event.at)),
      h(
        'button',
        { type: 'button', class: 'link', onclick: () => onOpen(event.taskId) },
        shortId(event.taskId),
      ),
      h('strong', {}, word(EVENT_WORDS, event.kind)),
      h('span', {}, `${move}${progress}`),
      event.gpuId ? h('span', {}, event.gpuId) : null,
    ),
  )
  while (list.children.length > KEPT) list.lastElementChild?.remove()
}
