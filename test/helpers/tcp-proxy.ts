/**
 * A TCP proxy on 127.0.0.1:0 in front of a real server, for cutting a connection in a test: `cut()`
 * destroys every open connection (both sides see a reset), `refuse` makes new connections fail,
 * `stall` holds bytes without forwarding (a half-open link, only keep-alive notices).
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'

export interface TcpProxy {
  readonly port: number
  readonly url: (scheme: string) => string
  /** Connections accepted so far. */
  readonly accepted: () => number
  cut(): void
  /** Open connections stop carrying bytes but stay open (a half-open link). */
  stall(): void
  setRefusing(refuse: boolean): void
  close(): Promise<void>
}

export async function startTcpProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let refusing = false
  let accepted = 0
  const stalled = new WeakSet<Socket>()
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
  }
  const server: Server = createServer((client) => {
    track(client)
    if (refusing) {
      client.destroy()
      return
    }
    accepted++
    const upstream = connect(targetPort, targetHost)
    track(upstream)
    client.on('data', (chunk) => {
      if (!stalled.has(client)) upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (!stalled.has(client)) client.write(chunk)
    })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    accepted: () => accepted,
    cut() {
      for (const socket of sockets) socket.destroy()
    },
    stall() {
      for (const socket of sockets) stalled.add(socket)
    },
    setRefusing(refuse) {
      refusing = refuse
    },
    close() {
      for (const socket of sockets) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
