import { createHash, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { Readable } from 'node:stream'
import { describe, expect, it, onTestFinished } from 'vitest'
import { RUN_SERVER_VOCABULARY, runServerAdapter } from '../../../gpu-bridge/adapters/run-server.js'
import type { InputSource, JobStatus } from '../../../gpu-bridge/adapters/types.js'
import { meaningOf } from '../../../gpu-bridge/adapters/vocabulary.js'
import { RunServerStatus, Stage, type FileRef, type TaskMessage } from '../../../protocol/index.js'
import { startFakeRunServer } from '../../fakes/run-server.js'
import { mp4Bytes, wavBytes } from '../../helpers/media.js'
import { tempDir } from '../../helpers/temp-dir.js'
import { waitFor } from '../../helpers/wait-for.js'

/** A task whose inputs are served from memory, as the gateway's file pool would stream them. */
function taskWithInputs(): { task: TaskMessage; source: InputSource } {
  const bytes = new Map<string, Buffer>()
  const ref = (data: Buffer, ext: string): FileRef => {
    const hash = createHash('md5').update(data).digest('hex')
    bytes.set(hash, data)
    return { hash, ext, size: data.length }
  }
  const task: TaskMessage = {
    v: 1,
    taskId: randomUUID(),
    attempt: 1,
    order: 1,
    type: 'heygem',
    input: { audio: ref(wavBytes('vocab'), '.wav'), video: ref(mp4Bytes('vocab'), '.mp4') },
    options: {},
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  }
  const source: InputSource = {
    open: (file) => {
      const data = bytes.get(file.hash)
      if (data === undefined) throw new Error(`no input ${file.hash}`)
      return Promise.resolve(Readable.from([data]))
    },
  }
  return { task, source }
}

describe("run_server's progress vocabulary", () => {
  it('maps every run_server status to a relay stage or an end', () => {
    expect(Object.keys(RUN_SERVER_VOCABULARY.words).sort()).toEqual(
      [...RunServerStatus.options].sort(),
    )
    expect(RUN_SERVER_VOCABULARY.words).toEqual({
      queued: 'waiting',
      processing: 'starting',
      synthesizing: 'rendering',
      encoding: 'encoding',
      done: 'done',
      error: 'failed',
    })
    for (const status of RunServerStatus.options) {
      const meaning = meaningOf(RUN_SERVER_VOCABULARY, status)
      expect(meaning === 'done' || meaning === 'failed' || Stage.safeParse(meaning).success).toBe(
        true,
      )
    }
  })

  it("reads a word it does not list as a running job at the vocabulary's unknown stage", () => {
    for (const word of ['paused', '', 'DONE', 'constructor', '__proto__', 'toString']) {
      expect(meaningOf(RUN_SERVER_VOCABULARY, word), word).toBe(RUN_SERVER_VOCABULARY.unknown)
    }
    expect(RUN_SERVER_VOCABULARY.unknown).toBe('starting')
  })

  it('reports a real job in relay stages: waiting behind another, starting, rendering, done', async () => {
    const fake = await startFakeRunServer({ dir: await tempDir('vocab'), durationMs: 1_500 })
    onTestFinished(() => fake.close())
    await fake.ready
    const adapter = runServerAdapter({ url: fake.url, secret: null })
    const signal = AbortSignal.timeout(30_000)
    const first = taskWithInputs()
    const second = taskWithInputs()
    await adapter.prepare(first.task, first.source, signal)
    await adapter.prepare(second.task, second.source, signal)
    const a = await adapter.submit(first.task, signal)
    const b = await adapter.submit(second.task, signal)

    const seen = new Set<string>()
    const watch = async (id: string): Promise<JobStatus> => {
      const status = await adapter.poll(id, signal)
      if (status.kind === 'running') {
        expect(Stage.safeParse(status.stage).success).toBe(true)
        if (status.stage === 'waiting') expect(status.progress).toBe(0)
        seen.add(status.stage)
      }
      return status
    }
    const firstEnd = await waitFor(
      async () => {
        await watch(b.serviceTaskId)
        const s = await watch(a.serviceTaskId)
        return s.kind === 'running' ? null : s
      },
      { timeoutMs: 20_000, intervalMs: 20, what: 'the first job to end' },
    )
    expect(firstEnd.kind).toBe('done')
    const secondEnd = await waitFor(
      async () => {
        const s = await watch(b.serviceTaskId)
        return s.kind === 'running' ? null : s
      },
      { timeoutMs: 20_000, intervalMs: 20, what: 'the second job to end' },
    )
    expect(secondEnd.kind).toBe('done')
    expect(seen).toContain('waiting')
    expect(seen).toContain('starting')
    expect(seen).toContain('rendering')
    for (const word of ['queued', 'processing', 'synthesizing']) expect(seen).not.toContain(word)
  })

  it('follows a job whose status word it does not know, with its progress and frames', async () => {
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({
          code: 0,
          data: {
            task_id: 'abc',
            status: 'postprocessing',
            progress: 96,
            message: '后处理中...',
            current_frame: 10,
            total_frames: 10,
          },
        }),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    const adapter = runServerAdapter({
      url: `http://127.0.0.1:${String(address.port)}`,
      secret: null,
    })
    expect(await adapter.poll('abc', AbortSignal.timeout(5_000))).toEqual({
      kind: 'running',
      stage: 'starting',
      progress: 96,
      message: '后处理中...',
      currentFrame: 10,
      totalFrames: 10,
    })
  })
})
