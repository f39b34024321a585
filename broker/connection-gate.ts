/**
 * What every accepted MQTT socket passes before the broker reads a byte of it (docs/design.md,
 * "Hostile and slow MQTT clients"): at most `maxPerAddress` open connections per client address,
 * counted across the TCP, TLS and WebSocket listeners together (one over the cap is closed at
 * once), and a deadline from accept to a completed CONNECT that covers the TLS handshake and the
 * WebSocket upgrade too (a socket that has not logged in by then is closed). State lives only
 * while connections are open.
 */
import type { Socket } from 'node:net'
import type { Logger } from 'pino'

export interface ConnectionGateOptions {
  readonly maxPerAddress: number
  readonly connectTimeoutMs: number
}

/** One admitted connection, until it closes. */
export interface Ticket {
  /** The client's address (an IPv4-mapped IPv6 address as plain IPv4). */
  readonly address: string
  /** The MQTT CONNECT completed: the deadline no longer applies. */
  established(): void
}

interface AddressEntry {
  open: number
  refused: number
}

/** `::ffff:127.0.0.2` and `127.0.0.2` are one client. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown'
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}

/** What names a live TCP connection on the broker's side. */
interface ConnectionEnds {
  readonly remoteAddress?: string | undefined
  readonly remotePort?: number | undefined
  readonly localPort?: number | undefined
}

/**
 * Names a live TCP connection: the client's address and port, and the listener's port (a client
 * may use one source port towards two listeners, TCP and WebSocket, at the same time).
 */
function connectionKey(socket: ConnectionEnds): string {
  const remote = `${normalizeAddress(socket.remoteAddress)}|${String(socket.remotePort ?? 0)}`
  return `${remote}|${String(socket.localPort ?? 0)}`
}

export class ConnectionGate {
  readonly #options: ConnectionGateOptions
  readonly #log: Logger
  readonly #addresses = new Map<string, AddressEntry>()
  /**
   * Tickets of open connections by client address and port and listener port, so a TLS or
   * WebSocket stream finds its own.
   */
  readonly #tickets = new Map<string, Ticket>()

  constructor(options: ConnectionGateOptions, log: Logger) {
    this.#options = options
    this.#log = log
  }

  /**
   * A raw socket was accepted. Returns false (and has destroyed it) when its address is at the
   * cap; otherwise it is counted until it closes and dropped if CONNECT has not completed in time.
   */
  admit(socket: Socket): boolean {
    const address = normalizeAddress(socket.remoteAddress)
    const entry = this.#addresses.get(address) ?? { open: 0, refused: 0 }
    if (entry.open >= this.#options.maxPerAddress) {
      entry.refused++
      // One line when an address first hits the cap, then one per 1,000 refusals: no log flood.
      if (entry.refused % 1000 === 1) {
        this.#log.warn(
          { address, open: entry.open, refused: entry.refused },
          'MQTT connection over the per-address cap refused',
        )
      }
      socket.destroy()
      return false
    }
    entry.open++
    this.#addresses.set(address, entry)
    const key = connectionKey(socket)
    let timer: NodeJS.Timeout | null = setTimeout(() => {
      timer = null
      this.#log.info({ address }, 'MQTT CONNECT not completed in time; connection dropped')
      socket.destroy()
    }, this.#options.connectTimeoutMs)
    timer.unref()
    const ticket: Ticket = {
      address,
      established: () => {
        if (timer) clearTimeout(timer)
        timer = null
      },
    }
    this.#tickets.set(key, ticket)
    socket.once('close', () => {
      ticket.established()
      if (this.#tickets.get(key) === ticket) this.#tickets.delete(key)
      entry.open--
      if (entry.open <= 0) this.#addresses.delete(address)
    })
    return true
  }

  /** The ticket of an admitted connection, found through the stream that runs over it. */
  ticketFor(stream: ConnectionEnds): Ticket | null {
    return this.#tickets.get(connectionKey(stream)) ?? null
  }
}
