/**
 * What a task's owner reads when a job fails on the GPU: Chinese, without internal URLs, host
 * names or English library messages. The full error always goes to the bridge's log.
 */
import { ServiceRejected, ServiceUnreachable, SubmitUncertain } from './adapters/types.js'
import { HttpError } from '../lib/http-client.js'

const CJK = /[\u3400-\u9fff]/u
const URL_LIKE = /\b(?:https?|wss?|mqtts?):\/\/\S+/giu
/** run_server's error message prefix before the engine's reason. */
const FAILED_PREFIX = /^合成失败[:：]\s*/u

export const TEXTS = {
  engineInternal: 'GPU 合成失败：引擎内部错误（详情见 GPU 网桥日志）',
  unreachable: 'GPU 服务暂时无法连接，将重新执行',
  submitUnknown: '无法确认 GPU 服务是否收到了任务（提交时连接中断），将作为新的一次尝试执行',
  lost: 'GPU 服务丢失了该任务（可能已重启），将重新执行',
  unauthorized: 'GPU 服务拒绝了网桥的密钥（鉴权失败），请检查 GPU_SERVICE_SECRET',
  unreadable: 'GPU 服务返回了无法识别的应答（详情见 GPU 网桥日志）',
  generic: 'GPU 任务执行失败（详情见 GPU 网桥日志）',
} as const

/** A text fit for users, or null when it has no Chinese or is empty once URLs are removed. */
export function userSafe(text: string | null | undefined): string | null {
  if (typeof text !== 'string') return null
  const cleaned = text.replace(URL_LIKE, '').replace(/\s+/gu, ' ').trim()
  return cleaned !== '' && CJK.test(cleaned) ? cleaned : null
}

/** The engine's reason for a failed job: run_server's `error`, else its message without prefix. */
export function engineReason(error: string | null, message: string): string {
  const reason =
    error !== null && error.trim() !== '' ? error : message.replace(FAILED_PREFIX, '').trim()
  return userSafe(reason) ?? TEXTS.engineInternal
}

/** The `msg` of a run_server error reply, when it is fit for users. */
export function serviceReplyText(body: unknown): string {
  const msg =
    typeof body === 'object' && body !== null && 'msg' in body && typeof body.msg === 'string'
      ? body.msg
      : null
  const safe = userSafe(msg)
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
    const safe = userSafe(
      typeof err.body === 'object' && err.body !== null && 'msg' in err.body
        ? String(err.body.msg)
        : null,
    )
    if (safe !== null) return `GPU 服务返回错误：${safe}`
    return TEXTS.unreadable
  }
  return TEXTS.generic
}
