/**
 * Which addresses a webhook may be sent to. By default only public unicast ones: anything
 * ipaddr.js puts in another range (private, loopback, link-local, unique-local, unspecified,
 * carrier-grade NAT, multicast, 6to4, NAT64, reserved, …) is refused, as is any address of this
 * machine's own interfaces. An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
 * `allowPrivate` (WEBHOOK_ALLOW_PRIVATE) lets those through, but never the gateway's own
 * listener: a local address with the gateway's port.
 */
import { networkInterfaces } from 'node:os'
import ipaddr from 'ipaddr.js'

export interface AddressPolicy {
  readonly allowPrivate: boolean
  /** The port the gateway's HTTP listener is on (null before it listens). */
  readonly ownPort: () => number | null
}

/** Why an address is refused: the catalog variant of WEBHOOK_URL_REFUSED. */
export type AddressRefusal = 'private' | 'self'

/** The address canonical (IPv4-mapped IPv6 as IPv4, IPv6 compact); null if not an IP address. */
export function canonicalAddress(address: string): string | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
  // A zone (`fe80::1%eth0`) is no part of the address itself.
  const unzoned = bare.split('%')[0] ?? bare
  if (!ipaddr.isValid(unzoned)) return null
  return ipaddr.process(unzoned).toString()
}

/** Loopback, unspecified, or one of this machine's interface addresses. */
function isLocal(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  const range = address.range()
  if (range === 'loopback' || range === 'unspecified') return true
  const text = address.toString()
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (canonicalAddress(info.address) === text) return true
    }
  }
  return false
}

/** Why a webhook may not be sent to `address` on `port`, or null when it may. */
export function refusalOf(
  address: string,
  port: number,
  policy: AddressPolicy,
): AddressRefusal | null {
  const canonical = canonicalAddress(address)
  if (canonical === null) return 'private'
  const parsed = ipaddr.parse(canonical)
  const local = isLocal(parsed)
  if (local && port === policy.ownPort()) return 'self'
  if (policy.allowPrivate) return null
  if (local || parsed.range() !== 'unicast') return 'private'
  return null
}
