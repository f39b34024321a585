/**
 * The PC side's whole job: hash both inputs (streamed), upload only what the gateway lacks, submit,
 * follow the task with Chinese status lines, and download the result when it is done.
 */
import { stat } from 'node:fs/promises'
import { basename, extname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { md5File } from '../lib/hash.js'
import { HttpError } from '../lib/http-client.js'
import { Ext, isTerminal, type TaskStatusData, type TaskSubmitData } from '../protocol/index.js'
import type { RelayClient } from './client.js'
import { followByPush } from './follow-push.js'
import { failureReason, humanBytes, requestErrorText, statusLine } from './status-text.js'

export type OnUpdate = (line: string, status: TaskStatusData | null) => void

export interface PrepareOptions {
  readonly client: RelayClient
  readonly audioPath: string
  readonly videoPath: string
  readonly licenseKey: string
  /** Each step as a Chinese line; `status` is null before the task exists. */
  readonly onUpdate?: OnUpdate
  readonly signal?: AbortSignal
}

export interface LocalInput {
  readonly path: string
  readonly hash: string
  readonly ext: string
  readonly size: number
}

export interface Prepared {
  readonly submit: TaskSubmitData
  /** Hashes actually uploaded in this run (the server's real hash when it differed). */
  readonly uploaded: string[]
  readonly audio: LocalInput
  readonly video: LocalInput
}

export interface RenderOptions extends PrepareOptions {
  /** Where to save the result (or how to name it from the task id); without it, nothing is downloaded. */
  readonly outPath?: string | ((taskId: string) => string)
  /** Default 1000. */
  readonly pollMs?: number
  /** Consecutive failed status polls (no answer, or 5xx) tolerated before giving up; default 30. */
  readonly maxPollFailures?: number
  /** Called once the task exists, before following it. */
  readonly onSubmitted?: (submit: TaskSubmitData) => void
  /** Follow by the gateway's event stream (falling back to polling); default true. */
  readonly push?: boolean
  /** Every status seen while following; when given, changes are not also lines to `onUpdate`. */
  readonly onStatus?: (status: TaskStatusData) => void
}

export interface RenderResult {
  readonly taskId: string
  readonly status: TaskStatusData
  readonly uploaded: string[]
  readonly outPath?: string
  readonly bytes?: number
}

/** An input file that cannot be used (missing, or no recognisable extension): the caller's mistake. */
export class InputFileError extends Error {
  readonly path: string
  constructor(message: string, path: string) {
    super(message)
    this.name = 'InputFileError'
    this.path = path
  }
}

/** A task that ended `error`, `cancelled` or `expired`; the message is the Chinese reason. */
export class TaskFailedError extends Error {
  readonly status: TaskStatusData
  constructor(status: TaskStatusData) {
    super(failureReason(status))
    this.name = 'TaskFailedError'
    this.status = status
  }
}

export async function renderVideo(opts: RenderOptions): Promise<RenderResult> {
  const { client, signal } = opts
  const prepared = await prepareAndSubmit(opts)
  const taskId = prepared.submit.task_id
  opts.onSubmitted?.(prepared.submit)
  const status = await followTask(client, taskId, {
    pollMs: opts.pollMs ?? 1000,
    maxPollFailures: opts.maxPollFailures ?? 30,
    onUpdate: opts.onUpdate,
    onStatus: opts.onStatus,
    push: opts.push,
    signal,
  })
  const result = { taskId, status, uploaded: prepared.uploaded }
  if (opts.outPath === undefined) return result
  const outPath = typeof opts.outPath === 'string' ? opts.outPath : opts.outPath(taskId)
  opts.onUpdate?.('⬇️ 正在下载结果视频…', status)
  const { bytes } = await client.download(taskId, outPath, signal === undefined ? {} : { signal })
  return { ...result, outPath, bytes }
}

/** Hash, upload what is missing, submit. Everything before the task exists. */
export async function prepareAndSubmit(opts: PrepareOptions): Promise<Prepared> {
  const { client, signal } = opts
  const say = (line: string): void => opts.onUpdate?.(line, null)
  say('🔍 正在计算文件校验值…')
  let [audio, video] = await Promise.all([
    localInput(opts.audioPath, '音频'),
    localInput(opts.videoPath, '视频'),
  ])
  signal?.throwIfAborted()
  const present = await client.checkFiles(audio.hash === video.hash ? [audio] : [audio, video])
  const uploaded: string[] = []
  const ensure = async (file: LocalInput, what: string): Promise<LocalInput> => {
    if (present[file.hash] === true || uploaded.includes(file.hash)) {
      say(`✔️ ${what}已在服务器上，无需上传`)
      return file
    }
    signal?.throwIfAborted()
    say(`📤 正在上传${what} ${basename(file.path)}（${humanBytes(file.size)}）…`)
    const reply = await client.uploadFile(file.path, file)
    uploaded.push(reply.hash)
    if (!reply.hash_matched) {
      say(
        `⚠️ ${what}文件内容与校验值不符（上传时文件可能被修改），已按实际校验值 ${reply.hash} 提交`,
      )
      return { ...file, hash: reply.hash, size: reply.size }
    }
    return file
  }
  audio = await ensure(audio, '音频')
  video = await ensure(video, '视频')
  signal?.throwIfAborted()
  const submit = await client.submitTask({
    audio_hash: audio.hash,
    audio_ext: audio.ext,
    video_hash: video.hash,
    video_ext: video.ext,
    license_key: opts.licenseKey,
  })
  say(`📨 任务已提交，编号 ${submit.task_id}`)
  return { submit, uploaded, audio, video }
}

export interface FollowOptions {
  readonly pollMs: number
  readonly maxPollFailures?: number
  readonly onUpdate?: OnUpdate | undefined
  /** Every status seen; when given, status changes are not also lines to `onUpdate`. */
  readonly onStatus?: ((status: TaskStatusData) => void) | undefined
  /** Push first (follow-push.ts), polling when it is unavailable; default true. */
  readonly push?: boolean | undefined
  readonly signal?: AbortSignal | undefined
}

/**
 * Follow the task until it is terminal, by push where the gateway offers it, else by polling; a
 * line each time its status, progress or message changes. Resolves with the `done` status;
 * throws TaskFailedError for `error`, `cancelled`, `expired`.
 */
export async function followTask(
  client: RelayClient,
  taskId: string,
  opts: FollowOptions,
): Promise<TaskStatusData> {
  let lastKey = ''
  const seen = (status: TaskStatusData): void => {
    opts.onStatus?.(status)
    const key = `${status.status}|${Math.round(status.progress)}|${status.msg}`
    if (key === lastKey) return
    lastKey = key
    if (opts.onStatus === undefined) opts.onUpdate?.(statusLine(status), status)
  }
  if (opts.push !== false) {
    const { signal } = opts
    const pushed = await followByPush(client, taskId, { onStatus: seen, signal })
    if (pushed) return settled(pushed)
    opts.onUpdate?.('ℹ️ 进度推送不可用，改为定时查询任务状态', null)
  }
  return pollTask(client, taskId, { ...opts, seen })
}

/** The `done` status, or TaskFailedError for the other terminal states. */
function settled(status: TaskStatusData): TaskStatusData {
  if (status.status === 'done') return status
  throw new TaskFailedError(status)
}

async function pollTask(
  client: RelayClient,
  taskId: string,
  opts: FollowOptions & { readonly seen: (status: TaskStatusData) => void },
): Promise<TaskStatusData> {
  const maxFailures = opts.maxPollFailures ?? 30
  let failures = 0
  for (;;) {
    opts.signal?.throwIfAborted()
    let status: TaskStatusData | null = null
    try {
      status = await client.taskStatus(taskId)
      failures = 0
    } catch (err) {
      // No answer or a server fault: the gateway may be restarting; the task is safe there.
      if (!(err instanceof HttpError) || (err.status !== 0 && err.status < 500)) throw err
      failures++
      if (failures > maxFailures) throw err
      if (failures === 1)
        opts.onUpdate?.(`⚠️ 暂时无法获取任务状态（${requestErrorText(err)}），稍后重试…`, null)
    }
    if (status) {
      opts.seen(status)
      if (isTerminal(status.status)) return settled(status)
    }
    await sleep(opts.pollMs, undefined, opts.signal ? { signal: opts.signal } : {})
  }
}

async function localInput(path: string, what: string): Promise<LocalInput> {
  const ext = Ext.safeParse(extname(path))
  if (!ext.success) {
    throw new InputFileError(
      `无法从文件名识别${what}格式：${path}（文件名需带扩展名，如 .wav、.mp4）`,
      path,
    )
  }
  const info = await stat(path).catch(() => null)
  if (!info?.isFile()) throw new InputFileError(`找不到${what}文件：${path}`, path)
  const { hash, size } = await md5File(path)
  return { path, hash, ext: ext.data, size }
}
