/**
 * The PC app's `run_heygem_online` up to its submit (docs/real-services.md §2): the health loop and
 * the stage texts it shows while the server is not ready, check_files, upload_file for each file the
 * server lacks, and submit, which hands pc-app.ts the task id and the session the progress and
 * download stages use; also how the app completes `HEYGEM_SERVER_URL` and reads file names.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { md5Buffer } from '../../lib/hash.js'
import type { PcAppOptions, PcFile } from './pc-app.js'
import { GrError, type ProgressSession } from './pc-app-progress.js'
import {
  RequestsError,
  pyEqualsZero,
  pyGet,
  pyIndex,
  pyJson,
  pyRequest,
  pyStr,
  pyTruthy,
  raiseForStatus,
} from './pc-app-requests.js'

/** One run of the app up to its submit; what it shows and calls go into the given arrays. */
export class PcRun {
  readonly #o: PcAppOptions
  readonly #displayed: string[]
  readonly #calls: string[]
  readonly #now: () => number
  readonly #serverUrl: string
  readonly #secret: string
  readonly #headers: Record<string, string>
  readonly #t0: number

  constructor(options: PcAppOptions, displayed: string[], calls: string[]) {
    this.#o = options
    this.#displayed = displayed
    this.#calls = calls
    this.#now = options.now ?? Date.now
    this.#serverUrl = normalizeServerUrl(options.serverUrl)
    this.#secret = (options.apiSecret ?? '').trim()
    this.#headers = this.#secret ? { Authorization: `Bearer ${this.#secret}` } : {}
    this.#t0 = this.#now()
  }

  #display(text: string): void {
    this.#displayed.push(text)
    this.#o.onDisplay?.(text)
  }

  #call(what: string): void {
    this.#calls.push(what)
    this.#o.onCall?.(what)
  }

  #post(path: string, json: unknown, timeoutS: number): ReturnType<typeof pyRequest> {
    this.#call(`POST ${path}`)
    const url = `${this.#serverUrl}${path}`
    return pyRequest({ method: 'POST', url, json, headers: this.#headers, timeoutS })
  }

  async upToSubmit(): Promise<{ taskId: string; session: ProgressSession }> {
    const { video, audio } = this.#o
    const videoExt = splitExt(video.name) || '.mp4'
    const audioExt = splitExt(audio.name) || '.wav'
    await this.#waitHealthy()

    this.#display('计算文件指纹...')
    const videoHash = md5Buffer(video.bytes)
    const audioHash = md5Buffer(audio.bytes)

    this.#display('检查服务器文件...')
    let check: unknown
    try {
      const files = [
        { hash: videoHash, ext: videoExt },
        { hash: audioHash, ext: audioExt },
      ]
      const r = await this.#post('/api/heygem/check_files', { files }, 15)
      raiseForStatus(r)
      check = pyGet(await pyJson(r), 'data', {})
    } catch {
      check = {} // the app then uploads everything
    }
    const uploads: [string, PcFile, string, string][] = []
    if (!pyTruthy(pyGet(check, videoHash, false)))
      uploads.push(['video', video, videoHash, videoExt])
    if (!pyTruthy(pyGet(check, audioHash, false)))
      uploads.push(['audio', audio, audioHash, audioExt])
    for (const [ftype, file, hash, ext] of uploads) await this.#upload(ftype, file, { hash, ext })

    this.#display('提交合成任务...')
    let taskId: string
    try {
      const body = {
        audio_hash: audioHash,
        audio_ext: audioExt,
        video_hash: videoHash,
        video_ext: videoExt,
        license_key: this.#o.licenseKey ?? '',
      }
      const r = await this.#post('/api/heygem/submit', body, 30)
      raiseForStatus(r)
      const data = await pyJson(r)
      if (!pyEqualsZero(pyGet(data, 'code', null))) {
        throw new Error(pyStr(pyGet(data, 'msg', '提交失败')))
      }
      taskId = pyStr(pyIndex(pyIndex(data, 'data'), 'task_id'))
      pyGet(pyIndex(data, 'data'), 'queue', {})
    } catch (err) {
      throw new GrError(`提交合成任务失败: ${err instanceof Error ? err.message : String(err)}`)
    }
    const session: ProgressSession = {
      serverUrl: this.#serverUrl,
      headers: this.#headers,
      apiSecret: this.#secret,
      taskId,
      pollIntervalMs: this.#o.pollIntervalMs ?? 2_000,
      maxWaitS: (this.#o.maxWaitMs ?? 1_800_000) / 1000,
      elapsedS: () => (this.#now() - this.#t0) / 1000,
      display: (text) => {
        this.#display(text)
      },
      call: (what) => {
        this.#call(what)
      },
    }
    return { taskId, session }
  }

  /** Until health says `code == 0` and `initialized`; connection errors are waited out. */
  async #waitHealthy(): Promise<void> {
    const interval = this.#o.healthIntervalMs ?? 3_000
    const timeoutS = (this.#o.healthTimeoutMs ?? 1_800_000) / 1000
    const start = this.#now()
    const elapsed = (): number => Math.trunc((this.#now() - start) / 1000)
    for (;;) {
      try {
        this.#call('GET /api/heygem/health')
        const url = `${this.#serverUrl}/api/heygem/health`
        const r = await pyRequest({ method: 'GET', url, headers: this.#headers, timeoutS: 10 })
        raiseForStatus(r)
        const health = await pyJson(r)
        if (
          pyEqualsZero(pyGet(health, 'code', null)) &&
          pyTruthy(pyGet(health, 'initialized', null))
        )
          return
      } catch (err) {
        if (!(err instanceof RequestsError)) throw err
        if (elapsed() > timeoutS) {
          throw new GrError(`GPU 服务器等待超时 (${elapsed()}s)，请检查服务器状态或联系管理员`)
        }
        const text = err.message
        const waitable =
          text.includes('Connection') ||
          text.toLowerCase().includes('timeout') ||
          text.includes('Max retries')
        if (!waitable) throw new GrError('无法连接 HeyGem 合成服务器，请检查网络连接或服务器配置')
      }
      this.#display(simulatedStage(elapsed()))
      await sleep(interval)
    }
  }

  async #upload(ftype: string, file: PcFile, as: { hash: string; ext: string }): Promise<void> {
    const { hash, ext } = as
    this.#display(`上传${ftype}到服务器...`)
    try {
      this.#call('POST /api/heygem/upload_file')
      const r = await pyRequest({
        method: 'POST',
        url: `${this.#serverUrl}/api/heygem/upload_file`,
        headers: this.#headers,
        multipart: {
          fields: [
            ['hash', hash],
            ['ext', ext],
          ],
          file: { field: 'file', filename: baseName(file.name), bytes: file.bytes },
        },
        timeoutS: 600,
      })
      raiseForStatus(r)
      const reply = await pyJson(r)
      if (!pyEqualsZero(pyGet(reply, 'code', null))) {
        throw new Error(pyStr(pyGet(reply, 'msg', '上传失败'))) // a RuntimeError: not caught below
      }
    } catch (err) {
      if (err instanceof RequestsError)
        throw new GrError(`上传${ftype}到服务器失败: ${err.message}`)
      throw err
    }
  }
}

/** `HEYGEM_SERVER_URL` as the app completes it. */
export function normalizeServerUrl(raw: string): string {
  let url = raw.trim().replace(/\/+$/, '')
  if (!url) throw new GrError('HEYGEM_SERVER_URL 未配置，请在设置中配置 Linux HeyGem 服务器地址')
  if (!url.startsWith('http://') && !url.startsWith('https://')) url = `http://${url}`
  const netloc = /^https?:\/\/([^/?#]*)/.exec(url)?.[1] ?? ''
  const hostPort = netloc.slice(netloc.lastIndexOf('@') + 1)
  if (!/:\d+$/.test(hostPort)) url = `${url.replace(/\/+$/, '')}:8383`
  return url
}

/** `os.path.basename` on Windows, where the app runs: either slash separates. */
function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1)
}

/** `os.path.splitext(path)[1]`: leading dots of the name are not an extension. */
function splitExt(path: string): string {
  const name = baseName(path)
  const dot = name.lastIndexOf('.')
  if (dot <= 0 || /^\.+$/.test(name.slice(0, dot + 1))) return ''
  return name.slice(dot)
}

/** `_sim_wait_stage`: what the app shows while the server is not ready (it never says "GPU"). */
const STAGES: readonly (readonly [number, string])[] = [
  [0, '环境检测'],
  [15, '加载引擎'],
  [45, '模型预热'],
  [90, '资源分配'],
  [160, '推理准备'],
  [270, '深度优化'],
  [420, '最终准备'],
]

function simulatedStage(elapsed: number): string {
  let stage = '环境检测'
  for (const [from, name] of STAGES) if (elapsed >= from) stage = name
  const pct = Math.min(65, Math.trunc(3 + (62 * elapsed) / (elapsed + 90)))
  return `${stage}... ${pct}%`
}
