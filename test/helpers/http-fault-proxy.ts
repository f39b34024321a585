/**
 * An HTTP proxy on 127.0.0.1:0 in front of a real server that can answer chosen requests itself
 * with an error (a 500, a full disk's 507) instead of forwarding them: a gateway that fails a
 * request once, for a test. Every other request is streamed through unchanged.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { forwardRequest, listenForTest } from './test-http-server.js'

export interface Fault {
  readonly status: number
  readonly code: string
  readonly msg: string
}

export interface HttpFaultProxy {
  readonly url: string
  /** Requests matching `match` seen so far (answered by a fault or forwarded). */
  readonly seen: () => number
  /** Answer the next matching requests with these faults, one each, in order. */
  failNext(...faults: Fault[]): void
}

export async function startHttpFaultProxy(
  target: string,
  match: (req: IncomingMessage) => boolean,
): Promise<HttpFaultProxy> {
  const upstream = new URL(target)
  const pending: Fault[] = []
  let seen = 0
  const server: Server = createServer((req, res) => {
    const matched = match(req)
    if (matched) seen++
    const fault = matched ? pending.shift() : undefined
    if (fault) {
      // As a failing server would: answered at once, the body not read, the connection closed.
      res.writeHead(fault.status, { 'content-type': 'application/json', connection: 'close' })
      res.end(JSON.stringify({ code: fault.status, msg: fault.msg, data: { error: fault.code } }))
      res.once('finish', () => req.destroy())
      return
    }
    forwardRequest({ upstream, req, res })
  })
  const port = await listenForTest(server)
  return {
    url: `http://127.0.0.1:${String(port)}`,
    seen: () => seen,
    failNext(...faults) {
      pending.push(...faults)
    },
  }
}
