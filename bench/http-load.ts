/**
 * The load generator of bench/http.ts: keep-alive node:http requests, either `connections` at
 * once for a while (req/s) or one after another (latencies). The same code drives the relay and
 * its peer, so the ratio compares servers, not clients.
 */
import { Agent, request } from 'node:http'

export interface Req {
  readonly method: 'GET' | 'POST'
  readonly path: string
  readonly body?: unknown
}

export interface Target {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
}

export class Loader {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 })

  /** One request; its parsed envelope. A non-2xx status or an envelope code other than 0 throws. */
  send(target: Target, req: Req): Promise<unknown> {
    const body = req.body === undefined ? null : Buffer.from(JSON.stringify(req.body))
    const url = new URL(req.path, target.url)
    return new Promise((resolve, reject) => {
      const r = request(
        url,
        {
          method: req.method,
          agent: this.#agent,
          headers: {
            ...target.headers,
            ...(body ? { 'content-type': 'application/json', 'content-length': body.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString()
            const status = res.statusCode ?? 0
            if (status < 200 || status > 299) {
              reject(
                new Error(`${req.method} ${req.path}: ${String(status)} ${text.slice(0, 300)}`),
              )
              return
            }
            const parsed = parseJson(text)
            if (typeof parsed !== 'object' || parsed === null || !('code' in parsed)) {
              reject(new Error(`${req.method} ${req.path}: not an envelope: ${text.slice(0, 300)}`))
            } else if (parsed.code !== 0) {
              reject(new Error(`${req.method} ${req.path}: code ${text.slice(0, 300)}`))
            } else {
              resolve(parsed)
            }
          })
          res.on('error', reject)
        },
      )
      r.on('error', reject)
      r.end(body ?? undefined)
    })
  }

  /** `connections` loops sending `next()` for `ms`: completed requests per second. */
  async rate(
    target: Target,
    next: () => Req,
    o: { connections: number; ms: number },
  ): Promise<number> {
    const start = performance.now()
    const end = start + o.ms
    let done = 0
    const loop = async (): Promise<void> => {
      while (performance.now() < end) {
        await this.send(target, next())
        done += 1
      }
    }
    await Promise.all(Array.from({ length: o.connections }, loop))
    return done / ((performance.now() - start) / 1000)
  }

  /** `count` requests one after another: each one's time in ms. */
  async latencies(target: Target, next: () => Req, count: number): Promise<number[]> {
    const times: number[] = []
    for (let i = 0; i < count; i += 1) {
      const t0 = performance.now()
      await this.send(target, next())
      times.push(performance.now() - t0)
    }
    return times
  }

  close(): void {
    this.#agent.destroy()
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return null
  }
}
