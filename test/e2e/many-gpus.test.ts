import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { gpuPresence } from '../helpers/gateway-view.js'
import { submitFresh, taskStatus } from '../helpers/pc.js'
import {
  TEST_CREDENTIALS,
  startTestBridge,
  startTestGateway,
  startTestGpu,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('more than one GPU', () => {
  it('moves queued work off a GPU that goes offline to one that is online', async () => {
    const dir = await tempDir('many-gpus')
    const gateway = await startTestGateway(dir, {
      credentials: {
        ...TEST_CREDENTIALS,
        gpus: { ...TEST_CREDENTIALS.gpus, 'gpu-2': 'test-gpu-2-secret' },
      },
    })
    const slow = await startTestGpu(join(dir, 'one'), 60_000)
    const fast = await startTestGpu(join(dir, 'two'), 200)
    const one = await startTestBridge(join(dir, 'one'), gateway, slow)
    await waitFor(() => one.isConnected(), { what: 'gpu-1 connected' })
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push(await submitFresh(gateway.url))
    // gpu-1 runs the first and holds the other two in its queue.
    await waitFor(
      async () => (await taskStatus(gateway.url, ids[0] ?? '')).status === 'processing',
      {
        what: 'first task running on gpu-1',
      },
    )
    expect(ids.map((id) => gateway.store.get(id)?.gpu_id)).toEqual(['gpu-1', 'gpu-1', 'gpu-1'])

    await startTestBridge(join(dir, 'two'), gateway, fast, {
      gpuId: 'gpu-2',
      secret: 'test-gpu-2-secret',
    })
    await waitFor(async () => (await gpuPresence(gateway.url, 'gpu-2')).online, {
      what: 'gpu-2 online',
    })
    await one.close() // gpu-1 goes offline with two tasks still waiting for it
    await waitFor(
      async () => {
        const rest = await Promise.all(ids.slice(1).map((id) => taskStatus(gateway.url, id)))
        return rest.every((s) => s.status === 'done')
      },
      { what: 'the waiting tasks done on gpu-2', timeoutMs: 15_000 },
    )
    expect(ids.slice(1).map((id) => gateway.store.get(id)?.gpu_id)).toEqual(['gpu-2', 'gpu-2'])
    expect(fast.stats.submissions).toHaveLength(2)
  })
})
