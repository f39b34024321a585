/**
 * Work is pulled, not assigned (docs/design.md §3.2): no GPU is chosen at submit, every GPU that
 * runs a task's type is offered it, and the claim decides. So an idle GPU takes work while
 * another is busy, and a GPU that goes offline holds nothing back.
 */
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

const GPU_2 = { gpuId: 'gpu-2', secret: 'test-gpu-2-secret' }

async function twoGpuGateway(dir: string) {
  return startTestGateway(dir, {
    credentials: {
      ...TEST_CREDENTIALS,
      gpus: { ...TEST_CREDENTIALS.gpus, [GPU_2.gpuId]: GPU_2.secret },
    },
  })
}

async function statuses(url: string, ids: readonly string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => String((await taskStatus(url, id)).status)))
}

describe('more than one GPU', () => {
  it('an idle GPU takes the queued work while another is busy', async () => {
    const dir = await tempDir('many-gpus-idle')
    const gateway = await twoGpuGateway(dir)
    const slow = await startTestGpu(join(dir, 'one'), 60_000)
    const fast = await startTestGpu(join(dir, 'two'), 200)
    await startTestBridge(join(dir, 'one'), { gateway, gpu: slow })
    await startTestBridge(join(dir, 'two'), { gateway, gpu: fast }, GPU_2)
    await waitFor(async () => (await gpuPresence(gateway.url, 'gpu-2')).online, {
      what: 'gpu-2 online',
    })
    await waitFor(async () => (await gpuPresence(gateway.url, 'gpu-1')).online, {
      what: 'gpu-1 online',
    })
    const ids: string[] = []
    for (let i = 0; i < 4; i++) ids.push(await submitFresh(gateway.url))

    // Whichever task the slow GPU claimed runs there; the fast one takes all the others.
    await waitFor(
      async () => (await statuses(gateway.url, ids)).filter((s) => s === 'done').length === 3,
      { what: 'three tasks done while gpu-1 is busy', timeoutMs: 20_000 },
    )
    const rows = ids.map((id) => gateway.store.get(id))
    expect(rows.filter((r) => r?.state === 'done').map((r) => r?.gpu_id)).toEqual([
      'gpu-2',
      'gpu-2',
      'gpu-2',
    ])
    expect(rows.filter((r) => r?.state === 'processing').map((r) => r?.gpu_id)).toEqual(['gpu-1'])
    expect(slow.stats.submissions).toHaveLength(1)
    expect(fast.stats.submissions).toHaveLength(3)
  })

  it('a GPU that goes offline holds nothing back: the queued work runs on the next GPU to come online', async () => {
    const dir = await tempDir('many-gpus-offline')
    const gateway = await twoGpuGateway(dir)
    const slow = await startTestGpu(join(dir, 'one'), 60_000)
    const fast = await startTestGpu(join(dir, 'two'), 200)
    const one = await startTestBridge(join(dir, 'one'), { gateway, gpu: slow })
    await waitFor(() => one.isConnected(), { what: 'gpu-1 connected' })
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push(await submitFresh(gateway.url))
    // gpu-1 runs the first and holds the other two; they are still nobody's.
    await waitFor(
      async () => (await taskStatus(gateway.url, ids[0] ?? '')).status === 'processing',
      { what: 'first task running on gpu-1' },
    )
    expect(ids.map((id) => gateway.store.get(id)?.gpu_id ?? null)).toEqual(['gpu-1', null, null])

    await one.close() // gpu-1 goes offline holding two tasks
    await waitFor(async () => !(await gpuPresence(gateway.url, 'gpu-1')).online, {
      what: 'gpu-1 offline',
    })
    await startTestBridge(join(dir, 'two'), { gateway, gpu: fast }, GPU_2)
    await waitFor(
      async () => (await statuses(gateway.url, ids.slice(1))).every((s) => s === 'done'),
      { what: 'the waiting tasks done on gpu-2', timeoutMs: 15_000 },
    )
    expect(ids.slice(1).map((id) => gateway.store.get(id)?.gpu_id)).toEqual(['gpu-2', 'gpu-2'])
    expect(fast.stats.submissions).toHaveLength(2)
  })
})
