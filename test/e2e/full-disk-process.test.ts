/**
 * The gateway in its own process (test/chaos/processes.ts), its DATA_DIR on a small real tmpfs
 * that fills up (docs/design.md §3.9, point 3): a bridge reconnecting with its Last Will does not kill it (it did,
 * by an unhandled rejection in the broker's persistence), a restart while the disk is still full
 * starts, uploads and submits get 507 DISK_FULL, reads answer, no staged file stays, no queued
 * task is lost, and once the filler is deleted everything runs again without a restart.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { endClient } from '../../lib/mqtt.js'
import { bridgeClientId } from '../../protocol/index.js'
import { Proc, freePort } from '../chaos/processes.js'
import {
  allOk,
  expectAllDiskFull,
  readsAnswer,
  stagedFiles,
  tryNewWork,
  untilSeenFull,
} from '../helpers/full-disk.js'
import { finalStatus, media, submitFresh, submitTask, taskStatus, upload } from '../helpers/pc.js'
import { TEST_SECRETS, startTestBridge, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { IN_CI, fillDisk, smallTmpfs, tmpfsProblem } from '../helpers/tmpfs.js'
import { waitFor } from '../helpers/wait-for.js'

const problem = await tmpfsProblem()
if (problem !== null && !IN_CI) console.warn(`SKIPPED full-disk process test: ${problem}`)

/** Connect once as gpu-1's bridge, with its retained Last Will: connected, or refused. */
async function bridgeLogin(mqttUrl: string): Promise<'connected' | 'refused'> {
  const client = mqtt.connect(mqttUrl, {
    clientId: bridgeClientId('gpu-1'),
    username: 'gpu-1',
    password: TEST_SECRETS.gpu,
    clean: false,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    will: {
      topic: 'relay/gpus/gpu-1/state',
      payload: Buffer.from(JSON.stringify({ v: 1, online: false, epoch: 999_999 })),
      qos: 1,
      retain: true,
    },
  })
  onTestFinished(() => endClient(client))
  return new Promise((resolve) => {
    client.once('connect', () => resolve('connected'))
    client.once('close', () => resolve('refused'))
    client.once('error', () => resolve('refused'))
  })
}

describe.skipIf(problem !== null && !IN_CI)('a gateway process on a full disk', () => {
  it('survives Last-Will reconnects and a restart while full, refuses new work with 507, loses nothing, and resumes by itself', async () => {
    const disk = await smallTmpfs('gw-proc-full', 16)
    const gpuSide = await tempDir('gw-proc-gpu')
    const [httpPort, mqttPort] = [await freePort(), await freePort()]
    const gateway = new Proc(
      'gateway/main.ts',
      {
        DATA_DIR: join(disk, 'gateway'),
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_PORT: String(httpPort),
        BROKER_HOST: '127.0.0.1',
        BROKER_PORT: String(mqttPort),
        BROKER_WS_PORT: 'off',
        GATEWAY_MQTT_SECRET: TEST_SECRETS.gateway,
        MQTT_ADMIN_SECRET: TEST_SECRETS.admin,
        GPU_SECRETS: `gpu-1:${TEST_SECRETS.gpu}`,
        DISK_MIN_FREE_BYTES: String(2 * 1024 * 1024),
      },
      'gateway listening',
    )
    onTestFinished(() => gateway.stop())
    await gateway.start()
    const url = `http://127.0.0.1:${String(httpPort)}`
    const mqttUrl = `mqtt://127.0.0.1:${String(mqttPort)}`
    const relay = { url, mqttUrl }

    const gpu = await startTestGpu(gpuSide, 300)
    let bridge = await startTestBridge(gpuSide, { gateway: relay, gpu })
    const doneId = await submitFresh(url, 'K-disk')
    expect((await finalStatus(url, doneId)).status).toBe('done')
    await bridge.close()
    const audio = await upload(url, media('proc-a', 'audio'), '.wav')
    const video = await upload(url, media('proc-v', 'video'), '.mp4')
    const queued = [
      String((await submitTask(url, { audio, video, licenseKey: 'K-disk' })).data.task_id),
      String((await submitTask(url, { audio, video, licenseKey: 'K-disk' })).data.task_id),
    ]
    // A bridge the broker still holds when it reconnects: its will is stored.
    expect(await bridgeLogin(mqttUrl)).toBe('connected')

    const filler = fillDisk(disk)
    await untilSeenFull(url)
    // Reconnects with a Last Will onto the full disk: refused by the broker, the process lives.
    for (let i = 0; i < 3; i++) expect(await bridgeLogin(mqttUrl)).toBe('refused')
    expect(gateway.running, gateway.output().slice(-3000)).toBe(true)

    const refusals = await tryNewWork(url, { audio, video })
    console.log(
      `full disk, gateway process: ${refusals.map((r) => `${r.what} ${String(r.status)} in ${r.ms.toFixed(0)} ms`).join(', ')}`,
    )
    expectAllDiskFull(refusals)
    const reads = await readsAnswer(url, { done: doneId, queued })
    expect(reads).toEqual(allOk(reads))
    expect(await stagedFiles(join(disk, 'gateway'))).toEqual([])

    // Restarted while the disk stays full: it starts, and still has every task.
    await gateway.stop()
    await gateway.start()
    expect(await bridgeLogin(mqttUrl)).toBe('refused')
    expect(gateway.running, gateway.output().slice(-3000)).toBe(true)
    await untilSeenFull(url)
    expectAllDiskFull(await tryNewWork(url, { audio, video }))
    const readsAfter = await readsAnswer(url, { done: doneId, queued })
    expect(readsAfter).toEqual(allOk(readsAfter))
    for (const id of queued) expect((await taskStatus(url, id)).status).toBe('queued')
    expect(await stagedFiles(join(disk, 'gateway'))).toEqual([])

    // Stopped cleanly while there is room (SQLite removes its -shm files), started on a full
    // disk: it starts all the same.
    await rm(filler)
    await gateway.stop()
    const refill = fillDisk(disk)
    await gateway.start()
    expect(gateway.running, gateway.output().slice(-3000)).toBe(true)
    await untilSeenFull(url)
    expectAllDiskFull(await tryNewWork(url, { audio, video }))
    for (const id of queued) expect((await taskStatus(url, id)).status).toBe('queued')

    // Space returns: new work is taken and the queued tasks run, with no restart.
    await rm(refill)
    const fresh = await waitFor(
      async () => upload(url, media('proc-after', 'audio'), '.wav').catch(() => null),
      { what: 'an upload taken again', timeoutMs: 10_000 },
    )
    const later = String(
      (await submitTask(url, { audio: fresh, video, licenseKey: 'K-disk' })).data.task_id,
    )
    bridge = await startTestBridge(gpuSide, { gateway: relay, gpu })
    for (const id of [...queued, later]) {
      expect((await finalStatus(url, id, 30_000)).status, id).toBe('done')
    }
    expect(gpu.stats.submissions).toHaveLength(4)
    expect(gateway.running).toBe(true)
    expect(gateway.output()).not.toMatch(/unhandled|failed to start/i)
    await bridge.close()
  }, 120_000)
})
