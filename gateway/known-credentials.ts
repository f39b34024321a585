/**
 * Credentials that already held from an address (docs/design.md §7, "Who may call"). While an
 * address waits after failed logins, a credential it has used successfully before is still served:
 * the PCs behind one office NAT keep working while a mistyped one there backs off, yet guessing
 * stays slow (a guess is a credential never seen to hold, and waits). Only a digest of each
 * credential is kept, never the credential; bounded in addresses and per address.
 */
import { createHash } from 'node:crypto'

const MAX_ADDRESSES = 20_000
const MAX_PER_ADDRESS = 4

const digest = (token: string): string =>
  createHash('sha256').update(token).digest('base64url').slice(0, 22)

export class KnownCredentials {
  /** address → digests of credentials that held from it; Map order: least recently used first. */
  readonly #held = new Map<string, string[]>()

  /** True when `token` held from `address` before. */
  has(address: string, token: string): boolean {
    return this.#held.get(address)?.includes(digest(token)) === true
  }

  /** `token` held from `address`. */
  add(address: string, token: string): void {
    const key = digest(token)
    const known = this.#held.get(address) ?? []
    this.#held.delete(address)
    const next = [key, ...known.filter((k) => k !== key)].slice(0, MAX_PER_ADDRESS)
    this.#held.set(address, next)
    if (this.#held.size > MAX_ADDRESSES) {
      const oldest = this.#held.keys().next()
      if (!oldest.done) this.#held.delete(oldest.value)
    }
  }

  get size(): number {
    return this.#held.size
  }
}
