/**
 * Whose request this is, by address (docs/design.md §7): the socket's peer, or, when that peer is
 * one of `HTTP_TRUSTED_PROXIES` (an nginx or Caddy in front of the gateway), the address it says it
 * forwards for: the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy. Anyone
 * else's `X-Forwarded-For` is ignored (it is only a claim). Rate limits and failed-login waits are
 * kept per this address; the per-address connection cap does not count a trusted proxy (all its
 * callers share its connections).
 */
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'

/** An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) as plain IPv4. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/** The peer's address, spelled as `plainAddress` does. */
export function clientAddress(socket: Pick<Socket, 'remoteAddress'>): string {
  return plainAddress(socket.remoteAddress ?? 'unknown')
}

export interface CallerAddresses {
  /** True for a trusted proxy's address. */
  trusted(address: string): boolean
  /** The caller of this request (see above). */
  of(req: Pick<IncomingMessage, 'socket' | 'headers'>): string
}

export function callerAddresses(trustedProxies: readonly string[]): CallerAddresses {
  const proxies = new Set(trustedProxies.map(plainAddress))
  const trusted = (address: string): boolean => proxies.has(address)
  return {
    trusted,
    of(req) {
      const peer = clientAddress(req.socket)
      if (!trusted(peer)) return peer
      const header = req.headers['x-forwarded-for']
      const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
        .split(',')
        .map((part) => plainAddress(part.trim()))
        .filter((part) => part !== '')
      for (let i = forwarded.length - 1; i >= 0; i--) {
        const hop = forwarded[i]
        if (hop !== undefined && !trusted(hop)) return hop.slice(0, 64)
      }
      return peer
    },
  }
}
