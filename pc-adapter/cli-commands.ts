/**
 * `gpu-relay` commands: argument parsing and dispatch, testable without a process. Exit codes:
 * 0 done, 1 the task or the server failed, 2 usage error, 130 stopped by the user.
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { TaskId, type TaskStatusData } from '../protocol/index.js'
import { RelayClient } from './client.js'
import { HttpError } from '../lib/http-client.js'
import { STATE_NAMES, humanBytes, humanDuration, requestErrorText } from './status-text.js'
import { InputFileError, TaskFailedError, renderVideo } from './submit-flow.js'
import { ProgressBar } from './progress-bar.js'

export interface CliIo {
  readonly stdout: (s: string) => void
  readonly stderr: (s: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
  /** Aborted on Ctrl-C: stop waiting (the task stays on the server). */
  readonly signal?: AbortSignal
  /** stdout is a terminal: the progress bar is redrawn in place. */
  readonly isTTY?: boolean
  /** The terminal's width (columns). */
  readonly columns?: number
}

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8383'

export const USAGE = `gpu-relay — 通过 gpu-relay 网关提交 HeyGem 数字人视频任务（GPU 未开机时任务自动排队）

用法：
  gpu-relay submit --audio <音频.wav> --video <视频.mp4> --license <授权码> [--out <结果.mp4>]
                   [--server <地址>] [--secret <密钥>] [--poll-ms <毫秒>] [--poll]
      计算校验值、只上传服务器上没有的文件、提交任务、显示进度条，完成后下载结果
  gpu-relay status <任务编号> [--license <授权码>] [--server <地址>] [--secret <密钥>]
      查看任务状态（状态、进度、排队位置、预计时间、结果或错误）
  gpu-relay --help
      显示本帮助

选项：
  --server   网关地址；默认取环境变量 GPU_RELAY_URL、HEYGEM_SERVER_URL，否则 ${DEFAULT_SERVER_URL}
  --secret   访问密钥（Authorization: Bearer）；默认取环境变量 HEYGEM_API_SECRET
  --license  授权码；查看状态时带上，只能看到自己的任务
  --out      结果视频保存路径；默认为当前目录下的 <任务编号>.mp4
  --poll-ms  定时查询进度的间隔，默认 1000 毫秒
  --poll     不用进度推送，只定时查询（默认先用网关的进度推送，不可用时自动改为定时查询）

退出码：0 成功；1 任务失败或服务器报错；2 参数错误；130 已中断
`

const COMMON = {
  server: { type: 'string' },
  secret: { type: 'string' },
  license: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

const SUBMIT_OPTIONS = {
  ...COMMON,
  audio: { type: 'string' },
  video: { type: 'string' },
  out: { type: 'string' },
  'poll-ms': { type: 'string' },
  poll: { type: 'boolean' },
} as const

class UsageError extends Error {
  override readonly name = 'UsageError'
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === undefined) throw new UsageError('缺少命令')
    if (command === '--help' || command === '-h' || command === 'help') {
      io.stdout(USAGE)
      return 0
    }
    if (command === 'submit') return await submitCommand(rest, io)
    if (command === 'status') return await statusCommand(rest, io)
    throw new UsageError(`未知命令：${command}`)
  } catch (err) {
    return reportError(err, io)
  }
}

async function submitCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, SUBMIT_OPTIONS, false)
  if (values.help === true) {
    io.stdout(USAGE)
    return 0
  }
  const missing = (['audio', 'video', 'license'] as const).filter((k) => !values[k])
  if (missing.length > 0) {
    throw new UsageError(`缺少参数：${missing.map((k) => `--${k}`).join('、')}`)
  }
  const { audio = '', video = '', license = '' } = values
  const pollMs = values['poll-ms'] === undefined ? 1000 : Number(values['poll-ms'])
  if (!Number.isInteger(pollMs) || pollMs < 50) {
    throw new UsageError('--poll-ms 必须是不小于 50 的整数（毫秒）')
  }
  const client = makeClient(values, io)
  const submitted: { taskId?: string } = {}
  const bar = new ProgressBar({
    write: io.stdout,
    tty: io.isTTY === true,
    columns: io.columns,
  })
  try {
    const result = await renderVideo({
      client,
      audioPath: audio,
      videoPath: video,
      licenseKey: license,
      pollMs,
      outPath: values.out === undefined ? (id) => resolve(`${id}.mp4`) : resolve(values.out),
      ...(io.signal === undefined ? {} : { signal: io.signal }),
      push: values.poll !== true,
      onUpdate: (line) => {
        bar.print(line)
      },
      onStatus: (status) => {
        bar.update(status)
      },
      onSubmitted: (submit) => {
        submitted.taskId = submit.task_id
      },
    })
    bar.end()
    io.stdout(`💾 结果已保存到：${result.outPath ?? ''}（${humanBytes(result.bytes ?? 0)}）\n`)
    return 0
  } catch (err) {
    bar.end()
    const { taskId } = submitted
    if (taskId !== undefined && io.signal?.aborted === true) {
      io.stderr(`已停止等待。任务 ${taskId} 仍在服务器上，可稍后查看：gpu-relay status ${taskId}\n`)
      return 130
    }
    throw err
  }
}

async function statusCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, COMMON, true)
  if (values.help === true) {
    io.stdout(USAGE)
    return 0
  }
  const [id, extra] = positionals
  if (id === undefined) throw new UsageError('缺少任务编号')
  if (extra !== undefined) throw new UsageError(`多余的参数：${extra}`)
  if (!TaskId.safeParse(id).success) throw new UsageError(`任务编号格式不对：${id}`)
  const client = makeClient(values, io)
  const status = await client.taskStatus(id)
  io.stdout(describeStatus(status, client))
  return 0
}

/** The task's status as several Chinese lines. */
export function describeStatus(s: TaskStatusData, client: RelayClient): string {
  const lines = [`任务编号：${s.task_id}`, `状态：${STATE_NAMES[s.status]}（${s.status}）`]
  lines.push(`进度：${Math.round(s.progress)}%`)
  if (s.status === 'queued') {
    if (s.queue_position > 0) lines.push(`排队位置：第 ${s.queue_position} 位`)
    lines.push(
      s.eta_seconds > 0 ? `预计开始：${humanDuration(s.eta_seconds)}后` : '预计开始：即将开始',
    )
  }
  if (s.msg.trim() !== '') lines.push(`说明：${s.msg.trim()}`)
  if (s.result_url !== null) {
    const url = /^https?:\/\//.test(s.result_url) ? s.result_url : client.url(s.result_url)
    lines.push(`结果：${url}`)
  }
  if (s.error_msg !== null) lines.push(`错误：${s.error_msg}`)
  return `${lines.join('\n')}\n`
}

function parse<O extends typeof COMMON | typeof SUBMIT_OPTIONS>(
  args: string[],
  options: O,
  allowPositionals: boolean,
) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true })
  } catch (err) {
    // parseArgs' own messages name the offending option; keep them, in a Chinese frame.
    throw new UsageError(`参数有误：${err instanceof Error ? err.message : String(err)}`)
  }
}

function makeClient(
  values: { server?: string; secret?: string; license?: string },
  io: CliIo,
): RelayClient {
  const baseUrl =
    values.server ?? nonEmpty(io.env.GPU_RELAY_URL) ?? nonEmpty(io.env.HEYGEM_SERVER_URL)
  const secret = values.secret ?? nonEmpty(io.env.HEYGEM_API_SECRET)
  try {
    return new RelayClient({
      baseUrl: baseUrl ?? DEFAULT_SERVER_URL,
      ...(secret === undefined ? {} : { secret }),
      ...(values.license === undefined ? {} : { licenseKey: values.license }),
    })
  } catch {
    throw new UsageError(`服务器地址无效：${baseUrl ?? DEFAULT_SERVER_URL}`)
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function reportError(err: unknown, io: CliIo): number {
  if (err instanceof UsageError) {
    io.stderr(`错误：${err.message}\n\n${USAGE}`)
    return 2
  }
  if (err instanceof InputFileError) {
    io.stderr(`错误：${err.message}\n`)
    return 2
  }
  if (err instanceof TaskFailedError) {
    io.stderr(`❌ ${err.message}\n`)
    return 1
  }
  if (io.signal?.aborted === true) {
    io.stderr('已中断\n')
    return 130
  }
  // A refused request in the error catalog's words; anything else says what it is.
  if (err instanceof HttpError) {
    io.stderr(`错误：${requestErrorText(err)}\n`)
    return 1
  }
  io.stderr(`错误：${err instanceof Error ? err.message : String(err)}\n`)
  return 1
}
