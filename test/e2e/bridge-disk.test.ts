import { randomBytes } from 'node:crypto'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBridge } from '../../gpu-bridge/bridge.js'
import { bridgeTestConfig } from '../../gpu-bridge/config.js'
import { gpuPresence } from '../helpers/gateway-view.js'
import { finalStatus, submitFresh } from '../helpers/pc.js'
import {
  TEST_SECRETS,
  log,
  startTestBridge,
  startTestGateway,
  startTestGpu,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('a bridge whose inbox file is damaged', () => {
  it('moves it aside, starts empty, and runs the queued work that the birth reconcile sends again', async () => {
    const dir = await tempDir('damaged-inbox')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 200)
    const taskId = await submitFresh(gateway.url)
    // What a bad disk or a truncated copy leaves: not a database at all.
    await mkdir(join(dir, 'bridge'), { recursive: true })
    await writeFile(join(dir, 'bridge', 'bridge.sqlite'), randomBytes(8192))

    await startTestBridge(dir, { gateway, gpu })
    const done = await finalStatus(gateway.url, taskId, 20_000)
    expect(done.status).toBe('done')
    expect(gpu.stats.submissions).toHaveLength(1)
    const files = await readdir(join(dir, 'bridge'))
    expect(files.filter((f) => /^bridge\.sqlite\.damaged-\d+$/.test(f))).toHaveLength(1)
  })
})

describe('a GPU re-installed after its clock ran far ahead', () => {
  it('is accepted again: the recorded epoch far ahead of the gateway clock is reset by its live birth', async () => {
    const dir = await tempDir('epoch-ahead')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 200)
    const monthAhead = 30 * 24 * 60 * 60 * 1000
    const wrongClock = await startBridge(
      bridgeTestConfig({
        gpuId: 'gpu-1',
        mqttUrl: gateway.mqttUrl,
        gatewayUrl: gateway.url,
        serviceUrl: gpu.url,
        dataDir: join(dir, 'bridge-before'),
        secret: TEST_SECRETS.gpu,
      }),
      { log, now: () => Date.now() + monthAhead },
    )
    onTestFinished(() => wrongClock.close())
    await waitFor(async () => (await gpuPresence(gateway.url)).online, { what: 'GPU online' })
    await wrongClock.close()
    await waitFor(async () => !(await gpuPresence(gateway.url)).online, { what: 'GPU offline' })

    const taskId = await submitFresh(gateway.url)
    // Re-installed: a new data folder (epochs from the right clock, a month lower).
    const bridge = await startTestBridge(dir, { gateway, gpu })
    const done = await finalStatus(gateway.url, taskId, 20_000)
    expect(done.status).toBe('done')
    expect(gateway.store.get(taskId)?.attempt).toBe(1)
    expect((await gpuPresence(gateway.url)).epoch).toBe(bridge.epoch())
  })
})
