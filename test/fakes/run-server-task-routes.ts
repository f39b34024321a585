/**
 * The task routes of run_server (docs/real-services.md §1): `submit` (by hash, with the audio+video
 * cache), the legacy multipart `upload`, `progress`, `download` (Range-aware) and `queue`.
 */
import { createHash } from 'node:crypto'
import { extname } from 'node:path'
import { sendFailure, sendJson, type Json } from './flask-reply.js'
import { asDict, intField, queryArg, readJsonBody, strField } from './flask-request.js'
import type { RouteHandler, RunServerContext } from './run-server-context.js'
import { isNonEmptyFile, touch } from './run-server-files.js'
import { newTaskId } from './run-server-jobs.js'
import { readForm } from './run-server-multipart.js'
import { sendResultFile } from './run-server-download.js'

/** `md5(f"{audio_hash}_{video_hash}")[:16]`. */
export function cacheKeyOf(audioHash: string, videoHash: string): string {
  return createHash('md5').update(`${audioHash}_${videoHash}`).digest('hex').slice(0, 16)
}

function queueJson(ctx: RunServerContext): Json {
  return { ...ctx.tasks.queueInfo() }
}

export const submit: RouteHandler = async (req, res, ctx) => {
  const body = await readJsonBody(req)
  if (!body.ok) {
    sendFailure(res, 400, '请求体必须是合法的JSON')
    return
  }
  const data = asDict(body.value)
  const audioHash = strField(data, 'audio_hash')
  const audioExt = strField(data, 'audio_ext', '.wav')
  const videoHash = strField(data, 'video_hash')
  const videoExt = strField(data, 'video_ext', '.mp4')
  // Read (and so validated) as the real one does; only its PHP hub uses them.
  strField(data, 'license_key')
  intField(data, 'sender_fd')
  if (audioHash === '' || videoHash === '') {
    sendFailure(res, 400, 'audio_hash 和 video_hash 不能为空')
    return
  }
  if (!(await ctx.disk.storeHas(audioHash, audioExt))) {
    sendFailure(res, 404, `音频文件不存在: ${audioHash}${audioExt}，请先上传`)
    return
  }
  if (!(await ctx.disk.storeHas(videoHash, videoExt))) {
    sendFailure(res, 404, `视频文件不存在: ${videoHash}${videoExt}，请先上传`)
    return
  }
  const cacheKey = cacheKeyOf(audioHash, videoHash)
  const cached = ctx.disk.cachePath(cacheKey)
  if (await isNonEmptyFile(cached)) {
    await touch(cached)
    const task = ctx.tasks.addCached(cacheKey, { audioHash, videoHash, cacheKey }, cached)
    ctx.events.submit({ taskId: task.taskId, audioHash, videoHash, cached: true })
    sendJson(res, 200, {
      code: 0,
      msg: '缓存命中，直接返回',
      data: { task_id: task.taskId, cached: true, queue: queueJson(ctx) },
    })
    return
  }
  const task = ctx.tasks.submit({
    audioHash,
    videoHash,
    cacheKey,
    resultPathOf: (id) => ctx.disk.resultPath(id),
  })
  ctx.events.submit({ taskId: task.taskId, audioHash, videoHash, cached: false })
  sendJson(res, 200, {
    code: 0,
    msg: '任务已提交',
    data: { task_id: task.taskId, queue: queueJson(ctx) },
  })
}

/** Legacy: multipart `audio` + `video`, kept in `uploads/{task_id}/`, never cached. */
export const uploadAndSubmit: RouteHandler = async (req, res, ctx) => {
  const form = await readForm(req, {
    tempPath: () => ctx.disk.tempPath(),
    discard: (p) => ctx.disk.discard(p),
  })
  try {
    const audio = form.files.get('audio')
    const video = form.files.get('video')
    if (!audio || !video) {
      sendFailure(res, 400, '请上传 audio 和 video 文件')
      return
    }
    // The task id names the folder of its inputs, `uploads/{task_id}/audio.wav`.
    const taskId = newTaskId()
    const audioExt = extname(audio.filename) || '.wav'
    const videoExt = extname(video.filename) || '.mp4'
    await ctx.disk.place(audio.path, ctx.disk.legacyInputPath(taskId, 'audio', audioExt))
    await ctx.disk.place(video.path, ctx.disk.legacyInputPath(taskId, 'video', videoExt))
    const task = ctx.tasks.submit({
      taskId,
      audioHash: audio.hash,
      videoHash: video.hash,
      cacheKey: null,
      resultPathOf: (id) => ctx.disk.resultPath(id),
    })
    ctx.events.submit({
      taskId: task.taskId,
      audioHash: audio.hash,
      videoHash: video.hash,
      cached: false,
    })
    sendJson(res, 200, {
      code: 0,
      msg: '任务已提交',
      data: { task_id: task.taskId, queue: queueJson(ctx) },
    })
  } finally {
    await form.discardAll()
  }
}

export const progress: RouteHandler = (req, res, ctx) => {
  const taskId = queryArg(req, 'task_id')
  const view = taskId === '' ? undefined : ctx.tasks.view(taskId)
  if (taskId === '') sendFailure(res, 400, '缺少 task_id')
  else if (!view) sendFailure(res, 404, `任务 ${taskId} 不存在`)
  else {
    ctx.events.ask(taskId, 'progress')
    sendJson(res, 200, { code: 0, data: { ...view, queue: { ...view.queue } } })
  }
  return Promise.resolve()
}

export const download: RouteHandler = async (req, res, ctx) => {
  const taskId = queryArg(req, 'task_id')
  if (taskId === '') {
    sendFailure(res, 400, '缺少 task_id')
    return
  }
  const task = ctx.tasks.get(taskId)
  if (!task) {
    sendFailure(res, 404, `任务 ${taskId} 不存在`)
    return
  }
  if (task.state !== 'done') {
    const status = ctx.tasks.view(taskId)?.status ?? task.state
    sendFailure(res, 400, `任务尚未完成 (当前状态: ${status})`)
    return
  }
  await task.written?.catch(() => undefined)
  if (!(await isNonEmptyFile(task.resultPath))) {
    sendFailure(res, 404, '结果文件不存在')
    return
  }
  ctx.events.ask(taskId, 'download')
  await sendResultFile(req, res, { path: task.resultPath, downloadName: `${taskId}.mp4` })
}

export const queue: RouteHandler = (_req, res, ctx) => {
  const tasks: Json[] = ctx.tasks.listing()
  sendJson(res, 200, { code: 0, data: { ...ctx.tasks.queueInfo(), tasks } })
  return Promise.resolve()
}
