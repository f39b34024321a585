/**
 * The two halves every HTTP stand-in of the tests shares: listening on 127.0.0.1 port 0 with its
 * close registered for the end of the test, and streaming a request through to a real server.
 */
import { request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { onTestFinished } from 'vitest'

/** Listens on 127.0.0.1:0, closed (its connections too) when the test finishes; its port. */
export async function listenForTest(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  return (server.address() as AddressInfo).port
}

/**
 * Streams `req` to `upstream` unchanged and its reply back; `onReply` sees the upstream reply
 * once its head is written (to cut it later, say). An upstream failure destroys the response.
 */
export function forwardRequest(o: {
  readonly upstream: URL
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly onReply?: (reply: IncomingMessage) => void
}): void {
  const { upstream, req, res } = o
  const forward = request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    },
    (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers)
      reply.pipe(res)
      o.onReply?.(reply)
    },
  )
  forward.on('error', () => res.destroy())
  req.pipe(forward)
}
