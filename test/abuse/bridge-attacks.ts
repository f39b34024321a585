/**
 * An unlucky GPU machine (docs/design.md §3.9, points 6, 7): its clock once a month ahead (the bridge under
 * libfaketime) and then its data folder wiped, so its epochs are a month lower than the gateway
 * last saw; and an inbox file damaged on disk. Either way the bridge must be accepted and run work.
 * Before each wipe the GPU is let to finish what it holds (submits paused), as an operator would.
 */
import { randomBytes } from 'node:crypto'
import { readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { expectThat, type Ledger } from './cases.js'
import { dataOf, httpCall } from './http-raw.js'
import type { HonestPc } from './honest-pc.js'
import { AUTH, type AbuseRelay } from './relay-procs.js'

export interface BridgeContext {
  readonly relay: AbuseRelay
  readonly ledger: Ledger
  readonly pc: HonestPc
  /** libfaketime's path, or null (then the far-future case is not run). */
  readonly faketime: string | null
  readonly dir: string
}

/** Waits until nothing is queued or running and the honest PC has nothing unfinished. */
export async function drained(relay: AbuseRelay, pc: HonestPc): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const r = await httpCall(relay.http, { path: '/api/heygem/queue', headers: AUTH }).catch(
      () => null,
    )
    const q = r ? dataOf(r) : {}
    if (q.queued === 0 && q.processing === 0 && pc.unfinished() === 0) return
    if (Date.now() > deadline) throw new Error(`the GPU did not drain: ${JSON.stringify(q)}`)
    await delay(200)
  }
}

/** The first honest task accepted after now ends done within the time. */
async function runsWork(relay: AbuseRelay, pc: HonestPc, timeoutMs = 25_000): Promise<void> {
  const from = pc.accepted.length
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const task = pc.accepted[from]
    if (task) {
      const r = await httpCall(relay.http, {
        path: `/api/heygem/task/status?task_id=${task.id}`,
        headers: AUTH,
      }).catch(() => null)
      if (r && dataOf(r).status === 'done') return
    }
    if (Date.now() > deadline)
      throw new Error('no task submitted after the restart was done in 25 s')
    await delay(200)
  }
}

export async function bridgeAttacks(ctx: BridgeContext): Promise<void> {
  const { relay, ledger, pc } = ctx
  if (ctx.faketime !== null) {
    const rc = join(ctx.dir, 'bridge-clock.rc')
    await writeFile(rc, '+30d\n')
    await ledger.run(
      {
        area: 'bridge',
        point: 6,
        name: 'a bridge whose clock ran a month ahead, then its data folder wiped, is accepted',
      },
      async () => {
        await pc.withoutSubmits(async () => {
          await relay.bridge.stop()
          await relay.startBridge({
            LD_PRELOAD: ctx.faketime ?? '',
            FAKETIME_TIMESTAMP_FILE: rc,
            FAKETIME_DONT_FAKE_MONOTONIC: '1',
          })
          await drained(relay, pc)
          await relay.bridge.stop()
          await rm(relay.bridgeDir, { recursive: true, force: true })
          await relay.startBridge()
        })
        await runsWork(relay, pc)
      },
    )
  }
  await ledger.run(
    {
      area: 'bridge',
      point: 7,
      name: 'a damaged inbox file: moved aside, the bridge starts and runs the work',
    },
    async () => {
      await pc.withoutSubmits(async () => {
        await drained(relay, pc)
        await relay.bridge.stop()
        await rm(join(relay.bridgeDir, 'bridge.sqlite-wal'), { force: true })
        await rm(join(relay.bridgeDir, 'bridge.sqlite-shm'), { force: true })
        await writeFile(join(relay.bridgeDir, 'bridge.sqlite'), randomBytes(8192))
        await relay.startBridge()
      })
      await runsWork(relay, pc)
      const files = await readdir(relay.bridgeDir)
      expectThat(
        files.some((f) => /^bridge\.sqlite\.damaged-\d+$/.test(f)),
        `no damaged copy kept: ${files.join(', ')}`,
      )
    },
  )
}
