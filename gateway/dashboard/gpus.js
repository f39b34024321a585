/** The GPUs section: one card per GPU (presence, readiness, power, what runs, done today). */
import { h, show } from './dom.js'
import { POWER_WORDS, SERVICE_WORDS, STAGE_WORDS, ago, clock, shortId, word } from './words.js'

/** `options`: `{ powerButtons, onPower(gpuId, action), onOpen(taskId) }`. */
export function renderGpus(el, data, options) {
  if (data.gpus.length === 0) {
    show(el, h('p', { class: 'empty' }, '还没有 GPU 连接过（检查 GPU_IDS 与桥接程序）'))
    return
  }
  show(
    el,
    data.gpus.map((gpu) => gpuCard(gpu, options)),
  )
}

function gpuCard(gpu, options) {
  const presence = gpu.online ? (gpu.ready ? 'ready' : 'starting') : 'offline'
  const presenceWord = { ready: '在线 · 就绪', starting: '在线 · 未就绪', offline: '离线' }
  return h(
    'article',
    { class: `card gpu ${presence}`, 'data-gpu-id': gpu.id, 'data-presence': presence },
    h(
      'header',
      {},
      h('h3', {}, gpu.id),
      h('span', { class: `badge ${presence}` }, presenceWord[presence]),
    ),
    h(
      'dl',
      {},
      h('dt', {}, gpu.online ? '上线于' : '离线于'),
      h(
        'dd',
        { title: clock(gpu.since) },
        gpu.since ? `${clock(gpu.since)}（${ago(gpu.since)}）` : '—',
      ),
      h('dt', {}, 'GPU 服务'),
      h('dd', {}, gpu.online ? word(SERVICE_WORDS, gpu.service) : '—'),
      h('dt', {}, '连接代次'),
      h('dd', {}, gpu.epoch > 0 ? String(gpu.epoch) : '—'),
      h('dt', {}, '今日完成'),
      h('dd', { class: 'done-today' }, String(gpu.done_today)),
      gpu.power ? [h('dt', {}, '电源'), h('dd', { class: 'power' }, powerText(gpu.power))] : null,
    ),
    gpu.running.length > 0
      ? h(
          'ul',
          { class: 'running' },
          gpu.running.map((task) => runningLine(task, options)),
        )
      : h('p', { class: 'idle' }, gpu.online ? '空闲' : ''),
    gpu.power_requests && gpu.power_requests.length > 0 ? powerRequests(gpu.power_requests) : null,
    options.powerButtons ? powerButtons(gpu, options) : null,
  )
}

function runningLine(task, options) {
  return h(
    'li',
    {},
    h(
      'button',
      { class: 'link', type: 'button', onclick: () => options.onOpen(task.task_id) },
      shortId(task.task_id),
    ),
    ` ${word(STAGE_WORDS, task.stage)} `,
    h('progress', { max: 100, value: task.progress }),
    ` ${Math.round(task.progress)}%`,
  )
}

function powerText(power) {
  const since = typeof power.since === 'number' ? new Date(power.since).toISOString() : power.since
  const idle =
    power.idle_since === null || power.idle_since === undefined
      ? ''
      : `，空闲自 ${clock(typeof power.idle_since === 'number' ? new Date(power.idle_since).toISOString() : power.idle_since)}`
  return `${word(POWER_WORDS, power.state)}${since ? `（${ago(since)}）` : ''}${idle}`
}

function powerRequests(requests) {
  return h(
    'details',
    { class: 'power-requests' },
    h('summary', {}, `最近的电源请求（${requests.length}）`),
    h(
      'ul',
      {},
      requests.map((r) => {
        const at = typeof r.at === 'number' ? new Date(r.at).toISOString() : r.at
        const action = r.action === 'start' ? '开机' : r.action === 'stop' ? '关机' : r.action
        return h(
          'li',
          {},
          `${clock(at)} ${action ?? ''} ${r.reason ?? ''} → ${r.outcome ?? '进行中'}`,
        )
      }),
    ),
  )
}

function powerButtons(gpu, options) {
  return h(
    'div',
    { class: 'actions' },
    h(
      'button',
      { type: 'button', 'data-power': 'start', onclick: () => options.onPower(gpu.id, 'start') },
      '开机',
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'danger',
        'data-power': 'stop',
        onclick: () => options.onPower(gpu.id, 'stop'),
      },
      '关机',
    ),
  )
}
