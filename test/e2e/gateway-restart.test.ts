import { describe, expect, it } from 'vitest'
import { media, submitTask, taskStatus, upload } from '../helpers/pc.js'
import {
  startTestBridge,
  startTestBroker,
  startTestGateway,
  startTestGpu,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('a gateway restart while a task runs, with a broker that outlives it', () => {
  it('does not run the task again: the retained GPU state only prompts a fresh birth', async () => {
    const dir = await tempDir('gw-restart-running')
    const broker = await startTestBroker(dir)
    const first = await startTestGateway(dir, { mqttUrl: broker.url })
    const gpu = await startTestGpu(dir, 2_500)
    await startTestBridge(dir, { gateway: first, gpu })
    const audio = await upload(first.url, media('a', 'audio'), '.wav')
    const video = await upload(first.url, media('v', 'video'), '.mp4')
    const id = String((await submitTask(first.url, { audio, video, licenseKey: 'K' })).data.task_id)
    await waitFor(async () => Number((await taskStatus(first.url, id)).progress) > 5, {
      what: 'the job under way',
    })

    await first.close()
    const port = Number(new URL(first.url).port)
    const second = await startTestGateway(dir, { mqttUrl: broker.url, port })
    await waitFor(async () => (await taskStatus(second.url, id)).status === 'done', {
      what: 'done after the restart',
      timeoutMs: 20_000,
    })
    expect(gpu.stats.submissions).toHaveLength(1)
    expect(second.store.get(id)?.attempt).toBe(1)
  })
})
