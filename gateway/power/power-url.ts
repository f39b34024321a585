/**
 * POSTs a power request to `POWER_ON_URL` / `POWER_OFF_URL` as JSON. Only the HTTP status (or that
 * it failed or timed out) is recorded; the URL is never logged (it may carry a token), the reply's
 * body never read.
 */
export interface PowerUrlRequest {
  readonly url: string
  readonly body: {
    readonly gpu_id: string
    readonly action: string
    readonly reason: string
    readonly request_id: string
    readonly at: string
  }
  readonly timeoutMs: number
  readonly signal: AbortSignal
}

export type UrlResult =
  | { readonly kind: 'status'; readonly status: number }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'failed'; readonly error: string }

export async function postPowerUrl(r: PowerUrlRequest): Promise<UrlResult> {
  const timeout = AbortSignal.timeout(r.timeoutMs)
  try {
    const res = await fetch(r.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(r.body),
      signal: AbortSignal.any([timeout, r.signal]),
      redirect: 'error',
    })
    await res.body?.cancel()
    return { kind: 'status', status: res.status }
  } catch (err) {
    if (timeout.aborted) return { kind: 'timeout' }
    return { kind: 'failed', error: errorCode(err) }
  }
}

export function describeUrl(result: UrlResult): string {
  switch (result.kind) {
    case 'status':
      return `url: HTTP ${String(result.status)}`
    case 'timeout':
      return 'url: timed out'
    case 'failed':
      return `url: failed (${result.error})`
  }
}

/** The cause's code only (ECONNREFUSED): a message could repeat the URL. */
function errorCode(err: unknown): string {
  const cause: unknown = err instanceof Error ? err.cause : undefined
  if (cause !== null && typeof cause === 'object' && 'code' in cause) {
    const { code } = cause
    if (typeof code === 'string') return code
  }
  return err instanceof Error ? err.name : 'error'
}
