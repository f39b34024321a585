/**
 * One attempt: POST the body to the checked address (url-guard.ts), the URL's host in `Host`
 * and, for https, in SNI and the certificate check. The answer's status is all that is read:
 * the response is destroyed at its headers, so a huge body costs nothing, and a receiver that
 * never answers is cut at `timeoutMs` (connect, TLS and headers together). No redirect is
 * followed (a 3xx is not delivered), no socket is kept for reuse.
 */
import { request as httpRequest, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import type { ResolvedTarget } from './url-guard.js'

export interface SendResult {
  /** The receiver's HTTP status; null when none came (timeout, connection error). */
  readonly httpStatus: number | null
  readonly error: string | null
}

const ERROR_MAX = 200

export function sendWebhook(o: {
  readonly target: ResolvedTarget
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly timeoutMs: number
  /** Aborted when the gateway closes. */
  readonly signal: AbortSignal
}): Promise<SendResult> {
  const { target } = o
  const payload = Buffer.from(o.body, 'utf8')
  const https = target.url.protocol === 'https:'
  const options: RequestOptions & { servername?: string } = {
    host: target.address,
    family: target.family,
    port: target.port,
    path: `${target.url.pathname}${target.url.search}`,
    method: 'POST',
    headers: {
      host: target.url.host,
      'content-type': 'application/json',
      'content-length': String(payload.length),
      'user-agent': 'gpu-relay-webhooks',
      ...o.headers,
    },
    agent: false,
    signal: o.signal,
    ...(https && isIP(target.host) === 0 ? { servername: target.host } : {}),
  }
  return new Promise<SendResult>((resolve) => {
    let settled = false
    const finish = (result: SendResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      resolve(result)
    }
    const req = (https ? httpsRequest : httpRequest)(options, (res) => {
      res.destroy()
      finish({ httpStatus: res.statusCode ?? null, error: null })
    })
    const timer = setTimeout(() => {
      finish({ httpStatus: null, error: `no answer within ${String(o.timeoutMs)} ms` })
    }, o.timeoutMs)
    req.on('error', (err) => {
      finish({ httpStatus: null, error: err.message.slice(0, ERROR_MAX) })
    })
    req.setNoDelay(true)
    req.end(payload)
  })
}
