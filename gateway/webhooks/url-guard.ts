/**
 * A webhook URL checked: http or https, no login in it, and a host that resolves only to
 * addresses the policy allows (address-policy.ts). Checked at submit and again before every
 * attempt (an answer of the name's DNS may change: rebinding); the attempt then connects to the
 * very address checked, never resolving the name a second time.
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { refusalOf, type AddressPolicy, type AddressRefusal } from './address-policy.js'
import { appError } from '../../lib/errors.js'
import { WEBHOOK_URL_MAX_LENGTH } from '../../protocol/index.js'

export interface WebhookTarget {
  readonly url: URL
  /** The host name or address, IPv6 without its brackets, lower case, no trailing dot. */
  readonly host: string
  readonly port: number
}

export interface ResolvedTarget extends WebhookTarget {
  /** The checked address to connect to. */
  readonly address: string
  readonly family: 4 | 6
}

export type TargetRefusal = AddressRefusal | 'unresolvable'

/** Every address a name resolves to (node's resolver by default; tests may pass their own). */
export type Resolver = (host: string) => Promise<readonly { address: string; family: number }[]>

const RESOLVE_TIMEOUT_MS = 5_000

export const systemResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true })

/** The URL parsed (WHATWG: decimal, octal and hex IPv4 forms come out dotted), or null. */
export function parseWebhookUrl(raw: string): WebhookTarget | null {
  if (raw.length > WEBHOOK_URL_MAX_LENGTH) return null
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return null
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null
  if (url.username !== '' || url.password !== '') return null
  const host = hostOf(url.hostname)
  if (host === '') return null
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
  return { url, host, port }
}

function hostOf(hostname: string): string {
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
  return bare.toLowerCase().replace(/\.$/, '')
}

/** The first address of the target, when every address it resolves to is allowed. */
export async function resolveTarget(
  target: WebhookTarget,
  policy: AddressPolicy,
  resolve: Resolver,
): Promise<ResolvedTarget | TargetRefusal> {
  const literal = isIP(target.host)
  let addresses: readonly { address: string; family: number }[]
  if (literal !== 0) addresses = [{ address: target.host, family: literal }]
  else {
    try {
      addresses = await withTimeout(resolve(target.host), RESOLVE_TIMEOUT_MS)
    } catch {
      return 'unresolvable'
    }
  }
  const first = addresses[0]
  if (!first) return 'unresolvable'
  // One refused address refuses the name: a name that also answers 127.0.0.1 is not trusted.
  for (const { address } of addresses) {
    const refusal = refusalOf(address, target.port, policy)
    if (refusal) return refusal
  }
  return { ...target, address: first.address, family: first.family === 6 ? 6 : 4 }
}

/**
 * The submit's check: the URL as it will be stored, or WEBHOOK_URL_REFUSED. `requestHost` is the
 * request's Host header, the name callers reach the gateway by: that host is refused unless
 * private targets are allowed, and then still with the gateway's port.
 */
export async function checkWebhookUrl(o: {
  readonly raw: string
  readonly requestHost: string | null
  readonly policy: AddressPolicy
  readonly resolve: Resolver
}): Promise<string> {
  const target = parseWebhookUrl(o.raw)
  if (!target) throw appError('WEBHOOK_URL_REFUSED')
  const own =
    o.requestHost === null ? null : parseWebhookUrl(`${target.url.protocol}//${o.requestHost}/`)
  if (own?.host === target.host && (!o.policy.allowPrivate || own.port === target.port)) {
    throw appError('WEBHOOK_URL_REFUSED', { variant: 'self' })
  }
  const resolved = await resolveTarget(target, o.policy, o.resolve)
  if (typeof resolved === 'string') throw appError('WEBHOOK_URL_REFUSED', { variant: resolved })
  return target.url.href
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${String(ms)} ms`))
    }, ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
