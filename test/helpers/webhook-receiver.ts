/**
 * A webhook receiver on 127.0.0.1, port 0: records every request (headers and raw body) and
 * answers as told per request (1-based): a status, `hang` (never answers) or `endless` (200,
 * then a body that never ends). Closed when the test ends.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { listenForTest } from './test-http-server.js'

export interface ReceivedWebhook {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

export type Answer = number | 'hang' | 'endless'

export interface WebhookReceiver {
  /** http://127.0.0.1:port/hook */
  readonly url: string
  readonly port: number
  readonly received: ReceivedWebhook[]
  /** How to answer the n-th request (1-based) from now on. */
  answerWith(answer: (n: number) => Answer): void
}

export async function startWebhookReceiver(
  initial: (n: number) => Answer = () => 200,
): Promise<WebhookReceiver> {
  let answer = initial
  const received: ReceivedWebhook[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      })
      const how = answer(received.length)
      if (how === 'hang') return
      if (how === 'endless') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        const block = Buffer.alloc(64 * 1024, 0x61)
        const pump = (): void => {
          while (!res.destroyed && res.write(block));
        }
        res.on('drain', pump)
        pump()
        return
      }
      res.writeHead(how, { 'content-type': 'text/plain' }).end('ok')
    })
  })
  const port = await listenForTest(server)
  return {
    url: `http://127.0.0.1:${String(port)}/hook`,
    port,
    received,
    answerWith(next) {
      answer = next
    },
  }
}
