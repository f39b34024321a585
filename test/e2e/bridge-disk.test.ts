import { randomBytes } from 'node:crypto'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { finalStatus, submitFresh } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('a bridge whose inbox file is damaged', () => {
  it('moves it aside, starts empty, and runs the queued work that the birth reconcile sends again', async () => {
    const dir = await tempDir('damaged-inbox')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 200)
    const taskId = await submitFresh(gateway.url)
    // What a bad disk or a truncated copy leaves: not a database at all.
    await mkdir(join(dir, 'bridge'), { recursive: true })
    await writeFile(join(dir, 'bridge', 'bridge.sqlite'), randomBytes(8192))

    await startTestBridge(dir, gateway, gpu)
    const done = await finalStatus(gateway.url, taskId, 20_000)
    expect(done.status).toBe('done')
    expect(gpu.stats.submissions).toHaveLength(1)
    const files = await readdir(join(dir, 'bridge'))
    expect(files.filter((f) => /^bridge\.sqlite\.damaged-\d+$/.test(f))).toHaveLength(1)
  })
})
