/**
 * A backlog of 2,000 tasks through a real Mosquitto 2 with the generated configuration
 * (scripts/mosquitto-config.ts): every task published while the GPU is off reaches the bridge's
 * durable inbox once it connects. The gateway is stopped while the bridge receives, so nothing
 * it re-sends at a birth can fill a gap: what the inbox holds is what Mosquitto delivered.
 * Mosquitto's default `max_queued_messages 1000` would keep the first thousand and drop the rest.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort } from '../helpers/free-port.js'
import { mosquittoMissing } from '../helpers/mosquitto.js'
import { startTestMosquitto } from '../helpers/mosquitto.js'
import { media, submitTask, taskStatus, upload } from '../helpers/pc.js'
import {
  TEST_CREDENTIALS,
  startTestBridge,
  startTestGateway,
  startTestGpu,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const TASKS = 2_000
const PARALLEL = 8

/** The task ids in the bridge's inbox file (read beside the running bridge; WAL). */
function inboxTaskIds(path: string): Set<string> {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const rows = db.prepare('SELECT task_id FROM inbox').all() as { task_id: string }[]
    return new Set(rows.map((r) => r.task_id))
  } finally {
    db.close()
  }
}

describe.skipIf(mosquittoMissing())('an offline backlog through Mosquitto', () => {
  it(`delivers all ${String(TASKS)} tasks queued while the GPU was off to its inbox, then runs them`, async () => {
    const dir = await tempDir('mosquitto-backlog')
    const mosquitto = await startTestMosquitto({ dir, credentials: TEST_CREDENTIALS })
    // The GPU service is not up: the bridge reports it not ready and claims nothing.
    const servicePort = await freePort()
    const service = { url: `http://127.0.0.1:${String(servicePort)}` }
    const first = await startTestGateway(dir, { mqttUrl: mosquitto.url })
    // The GPU has been here before: Mosquitto holds its session while the tasks are published.
    const once = await startTestBridge(dir, { gateway: first, gpu: service })
    await waitFor(() => once.isConnected(), { what: 'the bridge connected once' })
    await once.close()

    const video = await upload(first.url, media('avatar', 'video'), '.mp4')
    const ids: string[] = new Array<string>(TASKS)
    let next = 0
    const submitter = async (): Promise<void> => {
      for (let i = next++; i < TASKS; i = next++) {
        const audio = await upload(first.url, media(`line-${String(i)}`, 'audio'), '.wav')
        ids[i] = String(
          (await submitTask(first.url, { audio, video, licenseKey: 'PC-1' })).data.task_id,
        )
      }
    }
    await Promise.all(Array.from({ length: PARALLEL }, submitter))
    expect(new Set(ids).size).toBe(TASKS)
    // Every task message acknowledged by Mosquitto (PUBACK) before the gateway goes.
    await waitFor(() => first.store.unpublished().length === 0, {
      what: 'every task published',
      timeoutMs: 30_000,
    })
    const httpPort = Number(new URL(first.url).port)
    await first.close()

    const bridge = await startTestBridge(dir, {
      gateway: { url: first.url, mqttUrl: mosquitto.url },
      gpu: service,
    })
    const inboxPath = join(dir, 'bridge', 'bridge.sqlite')
    let held = new Set<string>()
    await waitFor(
      () => {
        held = inboxTaskIds(inboxPath)
        return held.size >= TASKS
      },
      { what: `${String(TASKS)} tasks in the inbox`, timeoutMs: 60_000, intervalMs: 250 },
    ).catch((err: unknown) => {
      throw new Error(`the inbox holds ${String(held.size)} of ${String(TASKS)}`, { cause: err })
    })
    expect([...held].sort()).toEqual([...ids].sort())
    expect(bridge.isConnected()).toBe(true)

    // The gateway back, the service up: the oldest tasks run.
    const second = await startTestGateway(dir, { mqttUrl: mosquitto.url, port: httpPort })
    await startTestGpu(dir, 50, { port: servicePort })
    const oldest = ids.slice(0, 3)
    await waitFor(
      async () => {
        const all = await Promise.all(oldest.map((id) => taskStatus(second.url, id)))
        return all.every((s) => s.status === 'done')
      },
      { what: 'the oldest tasks done', timeoutMs: 30_000, intervalMs: 200 },
    )
    expect(mosquitto.log()).not.toMatch(/Outgoing messages are being dropped/)
  }, 180_000)
})
