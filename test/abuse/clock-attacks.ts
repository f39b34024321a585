/**
 * Clock steps of the gateway under libfaketime (docs/design.md §3.9, point 5): ±31 min while a task runs, +25 h and
 * −1 day while tasks are queued, and the gateway down while a job finishes, coming back 31 min
 * later by its clock. Nothing may expire, time out, fail or run twice for any of them.
 */
import { setTimeout as delay } from 'node:timers/promises'
import type { SteppedClock } from '../helpers/system-deps.js'
import { expectThat, type Ledger } from './cases.js'
import { dataOf, httpCall } from './http-raw.js'
import type { HonestPc, HonestTask } from './honest-pc.js'
import { AUTH, type AbuseRelay } from './relay-procs.js'

async function statusOf(port: number, id: string): Promise<string> {
  const r = await httpCall(port, {
    path: `/api/heygem/task/status?task_id=${id}`,
    headers: AUTH,
  }).catch(() => null)
  const s = r ? dataOf(r).status : undefined
  return typeof s === 'string' ? s : 'unknown'
}

/** A task that has just started (seen queued, then processing): most of its run is ahead. */
async function processingTask(port: number, pc: HonestPc, timeoutMs = 20_000): Promise<HonestTask> {
  const deadline = Date.now() + timeoutMs
  const seenQueued = new Set<string>()
  for (;;) {
    for (const t of pc.accepted.slice(-4)) {
      const s = await statusOf(port, t.id)
      if (s === 'queued') seenQueued.add(t.id)
      else if (s === 'processing' && seenQueued.has(t.id)) return t
    }
    if (Date.now() > deadline) throw new Error('no honest task started processing')
    await delay(50)
  }
}

async function finalOf(port: number, id: string, timeoutMs = 25_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const s = await statusOf(port, id)
    if (['done', 'error', 'cancelled', 'expired'].includes(s)) return s
    if (Date.now() > deadline) return s
    await delay(200)
  }
}

export interface ClockContext {
  readonly relay: AbuseRelay
  readonly ledger: Ledger
  readonly pc: HonestPc
  readonly clock: SteppedClock
}

export async function clockAttacks(ctx: ClockContext): Promise<void> {
  const { relay, ledger, pc, clock } = ctx
  const port = relay.http
  const runsOf = async (audio: string): Promise<number> =>
    (await relay.gpuStats()).submissions.filter((s) => s.audioHash === audio && !s.cached).length

  const duringRun = async (offset: string, name: string): Promise<void> => {
    await ledger.run({ area: 'clock', point: 5, name: name }, async () => {
      const task = await processingTask(port, pc)
      await clock.step(offset)
      const final = await finalOf(port, task.id)
      expectThat(final === 'done', `the running task ended ${final}`)
      const runs = await runsOf(task.audio)
      expectThat(runs === 1, `the GPU ran it ${String(runs)} times`)
    })
  }
  await duringRun('+31m', 'wall clock +31 min while a task runs: not timed out, not run again')
  await duringRun('+0', 'wall clock −31 min while a task runs: nothing fails')

  // Queued tasks: the bridge away, the PC keeps submitting.
  await relay.bridge.stop()
  const waitQueued = async (): Promise<HonestTask[]> => {
    // The PC fills its backlog of three while no GPU takes any.
    const deadline = Date.now() + 10_000
    while (pc.unfinished() < 3 && Date.now() < deadline) await delay(100)
    const open: HonestTask[] = []
    for (const t of pc.accepted.slice(-8)) {
      const s = await statusOf(port, t.id)
      if (s === 'queued' || s === 'processing') open.push(t)
    }
    return open
  }
  const queued = await waitQueued()
  await ledger.run(
    { area: 'clock', point: 5, name: 'wall clock +25 h with tasks queued: none expires' },
    async () => {
      expectThat(queued.length > 0, 'no task queued while the bridge was away')
      await clock.step('+25h')
      await delay(3_500) // the clock is read again within 1 s; housekeeping runs every second
      const states = await Promise.all(queued.map((t) => statusOf(port, t.id)))
      expectThat(
        states.every((s) => s === 'queued' || s === 'processing'),
        `states ${states.join(',')}`,
      )
    },
  )
  await ledger.run(
    {
      area: 'clock',
      point: 5,
      name: 'wall clock −1 day (a 49 h step back) with tasks queued: none fails, all run once',
    },
    async () => {
      await clock.step('-1d')
      await delay(3_500)
      const states = await Promise.all(queued.map((t) => statusOf(port, t.id)))
      await relay.startBridge()
      expectThat(
        states.every((s) => s === 'queued' || s === 'processing'),
        `states ${states.join(',')}`,
      )
      for (const t of queued) {
        const final = await finalOf(port, t.id, 30_000)
        expectThat(final === 'done', `${t.id} ended ${final}`)
        const runs = await runsOf(t.audio)
        expectThat(runs === 1, `${t.id} ran ${String(runs)} times`)
      }
    },
  )
  if (!relay.bridge.running) await relay.startBridge()
  await clock.step('+0')
  await delay(1_200)

  await ledger.run(
    {
      area: 'clock',
      point: 5,
      name: 'the gateway down while a job finishes, back 31 min later by its clock: taken from the bridge, not run again',
    },
    async () => {
      const task = await processingTask(port, pc)
      await pc.excuse(async () => {
        await relay.gateway.kill9()
        await clock.step('+31m')
        const stats = await relay.gpuStats()
        const gpuTask = stats.submissions.find((s) => s.audioHash === task.audio)?.taskId
        const deadline = Date.now() + 10_000
        while (
          gpuTask !== undefined &&
          !(await relay.gpuStats()).completed.includes(gpuTask) &&
          Date.now() < deadline
        ) {
          await delay(100)
        }
        await delay(1_000)
        await relay.startGateway()
      })
      const final = await finalOf(port, task.id)
      expectThat(final === 'done', `ended ${final}`)
      const runs = await runsOf(task.audio)
      expectThat(runs === 1, `the GPU ran it ${String(runs)} times`)
    },
  )
  await ledger.run(
    {
      area: 'clock',
      point: 5,
      name: 'back to the right time (−31 min) after the restart: running work goes on',
    },
    async () => {
      await clock.step('+0')
      const task = await processingTask(port, pc)
      const final = await finalOf(port, task.id)
      expectThat(final === 'done', `ended ${final}`)
      expectThat((await runsOf(task.audio)) === 1, 'run twice')
    },
  )
}
