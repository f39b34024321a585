/**
 * The gateway in its own process under libfaketime (Debian's `faketime`), its wall clock stepped
 * as NTP or a resumed VM would: FAKETIME_TIMESTAMP_FILE is rewritten and read on every call
 * (FAKETIME_NO_CACHE), and the monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC).
 * Skipped without libfaketime; under CI=true it fails instead.
 */
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort, startChildGateway } from '../helpers/child-process.js'
import { media, submitTask, taskStatus, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const LIBFAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
].find((path) => existsSync(path))
const skip = LIBFAKETIME === undefined && process.env.CI !== 'true'
if (skip)
  console.warn('faketime-clock: skipped, libfaketime not installed (apt-get install faketime)')

const MINUTE = 60_000

/** The child's wall clock as its HTTP replies show it (`Date`, whole seconds). */
async function childClock(url: string): Promise<number> {
  const res = await fetch(`${url}/api/heygem/health`)
  await res.arrayBuffer()
  return Date.parse(res.headers.get('date') ?? '')
}

describe('the gateway under libfaketime', () => {
  it.skipIf(skip)(
    'has its wall clock stepped +31 min, +25 h and -1 day while tasks are queued and running: nothing expires, re-runs or fails',
    async () => {
      if (LIBFAKETIME === undefined) {
        throw new Error('libfaketime.so.1 not found: CI=true needs it (apt-get install faketime)')
      }
      const dir = await tempDir('faketime')
      const rc = join(dir, 'faketime.rc')
      await writeFile(rc, '+0\n')
      const gateway = await startChildGateway(
        join(dir, 'gateway'),
        { http: await freePort(), mqtt: await freePort() },
        {
          LD_PRELOAD: LIBFAKETIME,
          FAKETIME_TIMESTAMP_FILE: rc,
          FAKETIME_NO_CACHE: '1',
          FAKETIME_DONT_FAKE_MONOTONIC: '1',
        },
      )
      const gpu = await startTestGpu(dir, 2_500)
      await startTestBridge(dir, { gateway, gpu })
      const ids: string[] = []
      for (let i = 0; i < 3; i++) {
        const audio = await upload(gateway.url, media(`ft-a${String(i)}`, 'audio'), '.wav')
        const video = await upload(gateway.url, media(`ft-v${String(i)}`, 'video'), '.mp4')
        ids.push(
          String((await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id),
        )
      }
      const status = async (id: string): Promise<Record<string, unknown>> =>
        taskStatus(gateway.url, id)

      /** Step the child's clock to `offsetMs` from now and let its clocks tick twice on it. */
      const step = async (spec: string, offsetMs: number): Promise<void> => {
        await writeFile(rc, `${spec}\n`)
        const seen = await waitFor(
          async () => {
            const at = await childClock(gateway.url)
            return Math.abs(at - Date.now() - offsetMs) < 5_000 ? at : null
          },
          { what: `the gateway's clock at ${spec}` },
        )
        await waitFor(async () => (await childClock(gateway.url)) >= seen + 2_000, {
          what: `two ticks at ${spec}`,
        })
      }

      const [first, second] = ids
      if (first === undefined || second === undefined) throw new Error('no ids')
      await waitFor(async () => Number((await status(first)).progress) > 5, {
        what: 'the first task running',
      })
      await step('+31m', 31 * MINUTE)
      await step('+25h', 25 * 60 * MINUTE)
      await waitFor(
        async () => ['processing', 'done'].includes(String((await status(second)).status)),
        {
          what: 'the second task running or done',
          timeoutMs: 20_000,
        },
      )
      await step('-1d', -24 * 60 * MINUTE)
      await waitFor(
        async () => (await Promise.all(ids.map(status))).every((s) => s.status === 'done'),
        { what: 'all three done', timeoutMs: 30_000 },
      )

      expect(gpu.stats.submissions).toHaveLength(3)
      const lines = gateway.child.lines()
      const bad = lines.filter((l) =>
        ['task expired', 'task timed out', 'task re-queued', 'task error'].includes(String(l.msg)),
      )
      expect(bad).toEqual([])
      const done = lines.filter((l) => l.msg === 'task done').map((l) => l.taskId)
      expect(done.sort()).toEqual([...ids].sort())
    },
    90_000,
  )
})
