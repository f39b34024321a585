/**
 * Client addresses for tests that need several: Linux routes all of 127/8 to lo, so a socket can
 * bind 127.0.0.2 … 127.0.0.254 as its source. Where it cannot (other systems), such tests skip
 * with a message, and fail under CI=true.
 */
import { createServer } from 'node:net'
import { connect, type Socket } from 'node:net'

/** Can a socket bind 127.0.0.2 as its local address? */
async function canBind(): Promise<boolean> {
  const server = createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.2', () => resolve())
    })
    return true
  } catch {
    return false
  } finally {
    server.close()
  }
}

/** Null when the addresses are usable; else why not (and under CI=true, a throw). */
export async function loopbackAddressesMissing(): Promise<string | null> {
  if (await canBind()) return null
  const why = 'cannot bind 127.0.0.2 (needs Linux, where 127/8 is all loopback)'
  if (process.env.CI === 'true') throw new Error(`required under CI: ${why}`)
  console.warn(`skipped: ${why}`)
  return why
}

/** The nth test client address: 127.0.0.(n+2), n from 0 to 252 (127.0.0.1 is the honest one). */
export function clientIp(n: number): string {
  if (n < 0 || n > 252) throw new Error(`no test address number ${String(n)}`)
  return `127.0.0.${String(n + 2)}`
}

/** A raw TCP connection to `url`'s host and port from `localAddress`, once connected. */
export function connectFrom(url: string, localAddress: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), localAddress })
    socket.once('error', reject)
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
  })
}
