/**
 * The admin API over fetch: every call sends `Authorization: Bearer <admin token>`; an answer is
 * the envelope `{code, msg, data}`, and a refusal throws an ApiError with the server's words.
 */

const TOKEN_KEY = 'gpu-relay.admin-token'

export class ApiError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

export function savedToken() {
  return localStorage.getItem(TOKEN_KEY) ?? ''
}

export function saveToken(token) {
  if (token === '') localStorage.removeItem(TOKEN_KEY)
  else localStorage.setItem(TOKEN_KEY, token)
}

export function authHeaders(extra = {}) {
  return { ...extra, Authorization: `Bearer ${savedToken()}` }
}

/** GET or POST `path` (JSON body for POST); resolves with `data`. */
export async function api(path, options = {}) {
  const { method = 'GET', body } = options
  let res
  try {
    res = await fetch(path, {
      method,
      headers: authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      cache: 'no-store',
    })
  } catch {
    throw new ApiError(0, '无法连接到服务器，请检查网络')
  }
  const envelope = await res.json().catch(() => null)
  if (!res.ok || envelope === null || envelope.code !== 0) {
    throw new ApiError(res.status, envelope?.msg ?? `请求失败（HTTP ${res.status}）`)
  }
  return envelope.data
}

/** Like `api`, but null when the route does not exist here (a part another version adds). */
export async function optional(path, options = {}) {
  try {
    return await api(path, options)
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null
    throw err
  }
}

/** Download a task's result with the token in a header (never in the address), as a file. */
export async function downloadResult(url, filename) {
  const res = await fetch(url, { headers: authHeaders() })
  if (!res.ok) throw new ApiError(res.status, `下载失败（HTTP ${res.status}）`)
  const blob = await res.blob()
  const link = document.createElement('a')
  link.href = URL.createObjectURL(blob)
  link.download = filename
  link.click()
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000)
}
