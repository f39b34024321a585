import { createServer } from 'node:http'
import { describe, expect, it } from 'vitest'
import { RelayClient } from '../../pc-adapter/client.js'
import { followByPush } from '../../pc-adapter/follow-push.js'
import { startTestGateway } from './gateway-fixture.js'
import { startTestBridge, startTestGpu } from '../helpers/relay.js'
import { forwardRequest, listenForTest } from '../helpers/test-http-server.js'
import { waitFor } from '../helpers/wait-for.js'
import { TASK_PATHS, type TaskStatusData } from '../../protocol/index.js'

/**
 * A proxy that cuts the task event streams open when told (a link that drops) and notes the
 * `Last-Event-ID` every stream request came with.
 */
async function droppingProxy(
  target: string,
): Promise<{ url: string; resumedFrom: string[]; cut: () => void }> {
  const upstream = new URL(target)
  const resumedFrom: string[] = []
  const open = new Set<() => void>()
  const server = createServer((req, res) => {
    const events = (req.url ?? '').startsWith(TASK_PATHS.events)
    if (events) resumedFrom.push(req.headers['last-event-id']?.toString() ?? '')
    forwardRequest({
      upstream,
      req,
      res,
      onReply: (reply) => {
        if (!events) return
        const cut = (): void => {
          reply.destroy()
          res.destroy()
        }
        open.add(cut)
        res.once('close', () => open.delete(cut))
      },
    })
  })
  const port = await listenForTest(server)
  return {
    url: `http://127.0.0.1:${String(port)}`,
    resumedFrom,
    cut: () => {
      for (const cut of open) cut()
    },
  }
}

describe('following a task by push', () => {
  it('reopens a cut stream with Last-Event-ID and follows the task to its end', async () => {
    const fx = await startTestGateway()
    const direct = new RelayClient({ baseUrl: fx.gateway.url })
    const submit = await fx.submitFresh(direct, 'license-push')
    const proxy = await droppingProxy(fx.gateway.url)
    const client = new RelayClient({ baseUrl: proxy.url, licenseKey: 'license-push' })
    const seen: TaskStatusData[] = []
    const following = followByPush(client, submit.task_id, {
      onStatus: (s) => seen.push(s),
      retryMs: 50,
    })
    // The first stream brought the queued task, then drops; the second resumes after its id.
    await waitFor(() => seen.length >= 1, { what: 'the first status' })
    proxy.cut()
    await waitFor(() => proxy.resumedFrom.length >= 2, { what: 'a second stream' })
    const gpu = await startTestGpu(fx.dir, 600)
    await startTestBridge(fx.dir, { gateway: fx.gateway, gpu })
    const end = await following
    expect(end?.status).toBe('done')
    const [first, second] = proxy.resumedFrom
    expect(first).toBe('')
    expect(second).toBe(String(fx.gateway.outbox.ofTask(submit.task_id)[0]?.id))
    expect(seen[0]?.status).toBe('queued')
    expect(seen.at(-1)?.status).toBe('done')
    expect(seen.map((s) => s.status)).toContain('processing')
  })
})
