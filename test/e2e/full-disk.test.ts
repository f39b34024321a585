/**
 * A gateway whose data folder is on a small real tmpfs that fills up (docs/design.md §3.9, point 3): uploads and
 * submits are answered 507 DISK_FULL at once, reads keep working, a bridge reconnecting with its
 * Last Will crashes nothing, no staged bytes stay behind, no accepted task is lost, and it all
 * resumes by itself once the filler is deleted.
 */
import { writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { DISK_FULL_MSG } from '../../gateway/disk-space.js'
import { gatewayTestConfig } from '../../gateway/config.js'
import { startGateway } from '../../gateway/gateway.js'
import {
  allOk,
  expectAllDiskFull,
  readsAnswer,
  stagedFiles,
  tryNewWork,
  untilSeenFull,
  type Refusal,
} from '../helpers/full-disk.js'
import { finalStatus, media, postForm, submitFresh, submitTask, upload } from '../helpers/pc.js'
import {
  TEST_CREDENTIALS,
  TEST_SECRETS,
  log,
  startTestBridge,
  startTestGateway,
  startTestGpu,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { IN_CI, fillDisk, freeBytes, smallTmpfs, tmpfsProblem } from '../helpers/tmpfs.js'
import { waitFor } from '../helpers/wait-for.js'

const problem = await tmpfsProblem()
if (problem !== null && !IN_CI) console.warn(`SKIPPED gateway full-disk tests: ${problem}`)

const MIB = 1024 * 1024

function watchUnhandled(): unknown[] {
  const seen: unknown[] = []
  const onRejection = (reason: unknown): void => {
    seen.push(reason)
  }
  process.on('unhandledRejection', onRejection)
  onTestFinished(() => {
    process.off('unhandledRejection', onRejection)
  })
  return seen
}

/** A file that leaves about `bytes` free on the disk; returns its path. */
function leaveFree(dir: string, bytes: number): string {
  const path = join(dir, `blocker-${String(bytes)}`)
  writeFileSync(path, Buffer.alloc(Math.max(0, freeBytes(dir) - bytes)))
  return path
}

function describeRefusals(refusals: readonly Refusal[]): string {
  return refusals.map((r) => `${r.what} ${String(r.status)} in ${r.ms.toFixed(0)} ms`).join(', ')
}

describe.skipIf(problem !== null && !IN_CI)('a gateway on a full disk', () => {
  it('refuses uploads and submits with 507 DISK_FULL at once, keeps answering reads, loses no queued task, and resumes without a restart', async () => {
    const disk = await smallTmpfs('gw-full', 16)
    const gpuSide = await tempDir('gw-full-gpu') // the GPU machine has its own disk
    const unhandled = watchUnhandled()
    const gateway = await startTestGateway(disk, { diskMinFreeBytes: 2 * MIB })
    const gpu = await startTestGpu(gpuSide, 300)
    let bridge = await startTestBridge(gpuSide, { gateway, gpu })
    const doneId = await submitFresh(gateway.url, 'K-disk')
    expect((await finalStatus(gateway.url, doneId)).status).toBe('done')
    await bridge.close()

    // Accepted while the GPU is away, then the disk fills.
    const audio = await upload(gateway.url, media('full-a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('full-v', 'video'), '.mp4')
    const queued = [
      String((await submitTask(gateway.url, { audio, video, licenseKey: 'K-disk' })).data.task_id),
      String((await submitTask(gateway.url, { audio, video, licenseKey: 'K-disk' })).data.task_id),
    ]
    // Below DISK_MIN_FREE_BYTES, with room still left for every write: refused by the threshold.
    const nearly = leaveFree(disk, MIB)
    await untilSeenFull(gateway.url)
    const belowMin = await tryNewWork(gateway.url, { audio, video })
    console.log(`below the minimum, in-process: ${describeRefusals(belowMin)}`)
    expectAllDiskFull(belowMin)
    expect(await stagedFiles(join(disk, 'gateway'))).toEqual([])

    // Not a block left: refused all the same.
    const filler = fillDisk(disk)
    expect(freeBytes(disk)).toBe(0)
    const refusals = await tryNewWork(gateway.url, { audio, video })
    console.log(`full disk, in-process: ${describeRefusals(refusals)}`)
    expectAllDiskFull(refusals)
    const reads = await readsAnswer(gateway.url, { done: doneId, queued })
    expect(reads).toEqual(allOk(reads))
    expect(await stagedFiles(join(disk, 'gateway'))).toEqual([])

    // The bridge comes back and reconnects (with its Last Will) while the disk is full: the
    // broker refuses what it cannot store, and the gateway stays up.
    bridge = await startTestBridge(gpuSide, { gateway, gpu })
    const retried = await tryNewWork(gateway.url, { audio, video })
    expectAllDiskFull(retried)
    expect(await stagedFiles(join(disk, 'gateway'))).toEqual([])

    await rm(filler)
    await rm(nearly)
    // Resumes by itself: the next upload and submit are taken, the queued tasks run.
    const fresh = await waitFor(
      async () => {
        const reply = await postForm(`${gateway.url}/api/heygem/upload_file`, {
          fields: { hash: 'x', ext: '.wav' },
          files: { file: { bytes: media('after-a', 'audio'), filename: 'a.wav' } },
        })
        return reply.status === 200 ? (reply.body.data as { hash: string }).hash : null
      },
      { what: 'an upload taken again', timeoutMs: 10_000 },
    )
    const later = String(
      (await submitTask(gateway.url, { audio: fresh, video, licenseKey: 'K-disk' })).data.task_id,
    )
    for (const id of [...queued, later]) {
      expect((await finalStatus(gateway.url, id, 30_000)).status, id).toBe('done')
    }
    expect(gpu.stats.submissions).toHaveLength(4)
    expect(unhandled).toEqual([])
    await bridge.close()
  }, 90_000)

  it('answers a submit whose task row meets the full disk, and an upload whose write does, 507 at once (no threshold), keeping none of the bytes', async () => {
    const disk = await smallTmpfs('gw-enospc', 16)
    const unhandled = watchUnhandled()
    const broker = await startBroker(
      {
        host: '127.0.0.1',
        port: 0,
        wsPort: null,
        persistencePath: null,
        auth: null,
        tls: null,
      },
      { log },
    )
    onTestFinished(() => broker.close())
    // No minimum: only the failing write can tell the disk is full.
    const gateway = await startGateway(
      gatewayTestConfig(join(disk, 'gateway'), {
        mqttUrl: broker.url,
        credentials: TEST_CREDENTIALS,
        diskMinFreeBytes: 0,
      }),
      { log },
    )
    onTestFinished(() => gateway.close())
    const inputs = {
      audio_hash: await upload(gateway.url, media('in-a', 'audio'), '.wav'),
      video_hash: await upload(gateway.url, media('in-v', 'video'), '.mp4'),
    }
    // Not a block left, nothing seen yet: the task row fails (SQLITE_FULL), and that is a 507.
    const filler = fillDisk(disk)
    const submit = await fetch(`${gateway.url}/api/heygem/task/submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...inputs, audio_ext: '.wav', video_ext: '.mp4', license_key: 'K' }),
    })
    const submitted = (await submit.json()) as { msg?: unknown; data?: { error?: unknown } }
    expect([submit.status, submitted.msg, submitted.data?.error]).toEqual([
      507,
      DISK_FULL_MSG,
      'DISK_FULL',
    ])
    await rm(filler)

    // Leave 1 MiB; the 4 MiB upload fails part-way with ENOSPC.
    const blocker = leaveFree(disk, MIB)
    const started = performance.now()
    const reply = await postForm(`${gateway.url}/api/heygem/upload_file`, {
      fields: { hash: 'x', ext: '.mp4' },
      files: { file: { bytes: media('big', 'video', 4 * MIB), filename: 'v.mp4' } },
    })
    const ms = performance.now() - started
    console.log(
      `upload meeting ENOSPC mid-write answered ${String(reply.status)} in ${ms.toFixed(0)} ms`,
    )
    expect([reply.status, reply.body.msg, (reply.body.data as { error?: unknown }).error]).toEqual([
      507,
      DISK_FULL_MSG,
      'DISK_FULL',
    ])
    expect(await stagedFiles(join(disk, 'gateway'))).toEqual([])
    expect(freeBytes(disk)).toBeGreaterThanOrEqual(MIB / 2)

    await rm(blocker)
    expect(unhandled).toEqual([])
  })

  it('answers a result hand-over that meets the full disk 507 at once and keeps none of its bytes', async () => {
    const disk = await smallTmpfs('gw-result', 16)
    const gpuSide = await tempDir('gw-result-gpu')
    const unhandled = watchUnhandled()
    const gateway = await startTestGateway(disk, { diskMinFreeBytes: 0 })
    const gpu = await startTestGpu(gpuSide, 8_000)
    await startTestBridge(gpuSide, { gateway, gpu })
    const id = await submitFresh(gateway.url, 'K-disk')
    const running = await waitFor(
      () => {
        const row = gateway.store.get(id)
        return row?.state === 'processing' ? row : null
      },
      { what: 'the task running' },
    )
    const blocker = leaveFree(disk, MIB)
    const started = performance.now()
    const res = await fetch(
      `${gateway.url}/api/relay/tasks/${id}/result?attempt=${String(running.attempt)}&ext=.mp4`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer gpu.gpu-1.${TEST_SECRETS.gpu}`,
          'content-type': 'application/octet-stream',
        },
        body: media('result', 'video', 4 * MIB),
        signal: AbortSignal.timeout(15_000),
      },
    )
    const body = (await res.json()) as { msg?: unknown; data?: { error?: unknown } }
    const ms = performance.now() - started
    console.log(
      `result hand-over meeting ENOSPC answered ${String(res.status)} in ${ms.toFixed(0)} ms`,
    )
    expect([res.status, body.msg, body.data?.error]).toEqual([507, DISK_FULL_MSG, 'DISK_FULL'])
    expect(await stagedFiles(join(disk, 'gateway'))).toEqual([])
    await rm(blocker)
    expect(unhandled).toEqual([])
  })
})
