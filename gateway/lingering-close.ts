/**
 * Closing a connection whose request body is still arriving (a refusal before or during the
 * body): the reply goes out, then our half of the connection is closed (FIN), and what the client
 * still sends is read and dropped for a short while before the socket is destroyed. Destroying it
 * at once makes the kernel answer the unread bytes with a reset, which throws the reply away
 * before most clients read it: they read only once they have sent the body (Python's requests,
 * the PC app; fetch). Nothing is kept: the bytes are dropped as they come.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** How long a closing connection is read and dropped before it is destroyed. */
export const LINGER_MS = 2_000

/** Sockets whose close is arranged (closeAfterReply), and those already lingering. */
const lingering = new WeakSet<Socket>()
const closing = new WeakSet<Socket>()

/** Reply with `Connection: close`, then close with a lingering read (see above). */
export function closeAfterReply(req: IncomingMessage, res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('Connection', 'close')
  const socket = req.socket
  if (lingering.has(socket)) return
  lingering.add(socket)
  // Node's server calls destroySoon once the last reply of a closing connection is written.
  socket.destroySoon = () => {
    lingerThenDestroy(socket)
  }
}

/** Our side closed now; the socket destroyed when the client closes its side or LINGER_MS passes. */
export function lingerThenDestroy(socket: Socket): void {
  if (socket.destroyed || closing.has(socket)) return
  closing.add(socket)
  const timer = setTimeout(() => socket.destroy(), LINGER_MS)
  timer.unref()
  socket.once('close', () => {
    clearTimeout(timer)
  })
  socket.once('end', () => socket.destroy())
  socket.end()
  socket.resume()
}
