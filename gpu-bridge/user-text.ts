/**
 * What a task's owner reads when a job fails on the GPU: Chinese, without internal URLs, file
 * paths, host names or English library messages. The full error always goes to the bridge's log.
 * The texts say what happened, not what comes next: whether the task is tried again is the
 * gateway's decision, and it adds its own words when it gives up.
 */
import { ServiceRejected, ServiceUnreachable, SubmitUncertain } from './adapters/types.js'
import { HttpError } from '../lib/http-client.js'

const CJK = /[\u3400-\u9fff]/u
/** A clause ends at a colon, a semicolon, a line end, or a full stop. */
const CLAUSE_END = /([:：;；\n]|[.。!！?？](?:\s+|$))/u
/** URLs, absolute or relative file paths, Windows paths, `[Errno 2]`. */
const NOISE =
  /\b(?:https?|wss?|mqtts?):\/\/\S+|(?:[A-Za-z]:)?(?:[\\/][\w.@~-]+){2,}[\\/]?|'[^']*[\\/][^']*'|\[Errno\s*\d+\]/gu
/** Three Latin words in a row: a library's sentence, not a Chinese one with a term in it. */
const LATIN_SENTENCE = /[A-Za-z][\w'-]*(?:[\s,]+[A-Za-z][\w'-]*){2,}/u
/** run_server's error message prefix before the engine's reason. */
const FAILED_PREFIX = /^合成失败[:：]\s*/u

export const TEXTS = {
  engineInternal: 'GPU 合成失败：引擎内部错误（详情见 GPU 网桥日志）',
  unreachable: 'GPU 服务暂时无法连接',
  submitUnknown: '无法确认 GPU 服务是否收到了任务（提交时连接中断）',
  lost: 'GPU 服务丢失了该任务（可能已重启）',
  unauthorized: 'GPU 服务鉴权失败（网桥的密钥与 GPU 服务不符），请联系管理员',
  unreadable: 'GPU 服务返回了无法识别的应答（详情见 GPU 网桥日志）',
  generic: 'GPU 任务执行失败（详情见 GPU 网桥日志）',
} as const

/**
 * The clauses of `text` fit for users (Chinese ones, without URLs, paths or English sentences),
 * with their punctuation; null when none is left.
 */
export function userSafe(text: string | null | undefined): string | null {
  if (typeof text !== 'string') return null
  const parts = text.replace(NOISE, ' ').split(CLAUSE_END)
  let kept = ''
  for (let i = 0; i < parts.length; i += 2) {
    const clause = (parts[i] ?? '').replace(/\s+/gu, ' ').trim()
    if (clause === '' || !CJK.test(clause) || LATIN_SENTENCE.test(clause)) continue
    kept += clause + (parts[i + 1] ?? '').trim()
  }
  const cleaned = kept.replace(/[\s:：;；,，]+$/u, '')
  return cleaned === '' ? null : cleaned
}

/** The engine's reason for a failed job: run_server's `error`, else its message without prefix. */
export function engineReason(error: string | null, message: string): string {
  const reason =
    error !== null && error.trim() !== '' ? error : message.replace(FAILED_PREFIX, '').trim()
  return userSafe(reason) ?? TEXTS.engineInternal
}

/** The `msg` of a run_server error reply, when it is fit for users. */
export function serviceReplyText(body: unknown): string {
  const safe = userSafe(msgOf(body))
  return safe === null ? TEXTS.unreadable : `GPU 服务拒绝了任务：${safe}`
}

/** The owner's words for an error thrown while running a job. */
export function describeFailure(err: unknown): string {
  if (err instanceof ServiceRejected) return err.userText
  if (err instanceof SubmitUncertain) return TEXTS.submitUnknown
  if (err instanceof ServiceUnreachable) return TEXTS.unreachable
  if (err instanceof HttpError) {
    if (err.status === 401) return TEXTS.unauthorized
    if (err.status === 0) return TEXTS.unreachable
    const safe = userSafe(msgOf(err.body))
    return safe === null ? TEXTS.unreadable : `GPU 服务返回错误：${safe}`
  }
  return TEXTS.generic
}

function msgOf(body: unknown): string | null {
  return typeof body === 'object' && body !== null && 'msg' in body && typeof body.msg === 'string'
    ? body.msg
    : null
}
