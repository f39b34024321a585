/**
 * The bridge's claims against a real inbox (SQLite in a temp folder): capacity, the gateway's
 * "claim again later" answers, and offers other GPUs took (docs/design.md §3.2). The GPU service
 * is a stand-in that keeps every job running until the test ends: what is checked here is what
 * the runner claims and starts, not the jobs (the end-to-end tests run those).
 */
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { GpuAdapter } from '../../gpu-bridge/adapters/types.js'
import { GatewayFiles } from '../../gpu-bridge/gateway-files.js'
import { Inbox } from '../../gpu-bridge/inbox.js'
import { Runner } from '../../gpu-bridge/runner.js'
import { silentLogger } from '../../lib/logger.js'
import type { BridgeEvent, ClaimRefusal, TaskMessage } from '../../protocol/index.js'
import { offer } from '../helpers/offers.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/**
 * A GPU service whose jobs start and then run until the test ends. A submit answers when
 * `answerSubmit` says so (at once by default) and, like an HTTP request, fails when aborted.
 */
function serviceThatKeepsRunning(answerSubmit: () => Promise<void> = () => Promise.resolve()): {
  adapter: GpuAdapter
  submitted: string[]
} {
  const submitted: string[] = []
  const adapter: GpuAdapter = {
    name: 'stand-in',
    taskTypes: ['heygem'],
    readiness: () => Promise.resolve({ state: 'ready', detail: 'ok' }),
    prepare: () => Promise.resolve([]),
    submit: async (task, signal) => {
      submitted.push(task.taskId)
      await Promise.race([
        answerSubmit(),
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            reject(new Error('aborted'))
          })
        }),
      ])
      return { serviceTaskId: `svc-${task.taskId}`, cached: false }
    },
    poll: () => Promise.resolve({ kind: 'running', stage: 'starting', progress: 10, message: '' }),
    openResult: () => Promise.reject(new Error('never asked: no job ends here')),
  }
  return { adapter, submitted }
}

async function runner(
  capacity: number,
  answerSubmit?: () => Promise<void>,
): Promise<{
  runner: Runner
  inbox: Inbox
  claims: () => Extract<BridgeEvent, { kind: 'claim' }>[]
  submitted: string[]
}> {
  const dir = await tempDir('runner')
  const inbox = new Inbox(join(dir, 'bridge.sqlite'))
  const events: BridgeEvent[] = []
  const { adapter, submitted } = serviceThatKeepsRunning(answerSubmit)
  const r = new Runner({
    adapter,
    files: new GatewayFiles('http://127.0.0.1:9', null),
    inbox,
    log: silentLogger(),
    now: Date.now,
    pollMs: 20,
    progressIntervalMs: 50,
    serviceDownMs: 1_000,
    capacity,
    // Nothing is sent again within a test: every claim seen is a new one.
    claimRetryMs: 600_000,
    resendMs: 600_000,
    send: (event) => events.push(event),
    isConnected: () => true,
    isReady: () => true,
    epoch: () => 1,
  })
  onTestFinished(async () => {
    await r.close()
    inbox.close()
  })
  const claims = () =>
    events.filter((e): e is Extract<BridgeEvent, { kind: 'claim' }> => e.kind === 'claim')
  return { runner: r, inbox, claims, submitted }
}

const refuse = (r: Runner, m: TaskMessage, reason: ClaimRefusal) =>
  r.control({ v: 1, kind: 'claim-refused', taskId: m.taskId, attempt: m.attempt, reason })
const grant = (r: Runner, m: TaskMessage) =>
  r.control({ v: 1, kind: 'claim-granted', taskId: m.taskId, attempt: m.attempt })

describe('bridge runner', () => {
  it('claims up to its capacity at once, runs that many jobs side by side, and claims again when a slot frees', async () => {
    const { runner: r, claims, submitted } = await runner(2)
    const [a, b, c] = [offer(1), offer(2), offer(3)]
    for (const m of [a, b, c]) r.receive(m)
    expect(claims().map((e) => e.taskId)).toEqual([a.taskId, b.taskId])
    grant(r, a)
    grant(r, b)
    await waitFor(() => submitted.length === 2, { what: 'two jobs submitted' })
    expect(submitted).toEqual([a.taskId, b.taskId])
    expect(claims()).toHaveLength(2) // both slots in use
    r.control({ v: 1, kind: 'cancel', taskId: a.taskId, attempt: 1, reason: 'cancelled' })
    expect(claims().map((e) => e.taskId)).toEqual([a.taskId, b.taskId, c.taskId])
  })

  it('after not-next claims nothing else until an older task arrives, and claims that one at once', async () => {
    const { runner: r, claims } = await runner(1)
    const held = Array.from({ length: 50 }, (_, i) => offer(10 + i))
    for (const m of held) r.receive(m)
    const first = held[0] ?? offer(0)
    expect(claims().map((e) => e.taskId)).toEqual([first.taskId])
    refuse(r, first, 'not-next')
    // Every other offer held would be refused the same way: no storm of claims.
    expect(claims()).toHaveLength(1)
    r.receive(offer(11_000)) // a newer one does not end the wait
    expect(claims()).toHaveLength(1)
    const older = offer(3) // what the gateway sends after not-next
    r.receive(older)
    expect(claims().map((e) => e.taskId)).toEqual([first.taskId, older.taskId])
  })

  it('runs a grant that arrives after a refusal of an earlier copy of the same claim', async () => {
    const { runner: r, submitted } = await runner(1)
    const a = offer(1)
    r.receive(a)
    // The claim went out twice; the gateway refused the first copy (at-capacity, or not-ready
    // before it saw our birth) and granted the second: the refusal arrives first.
    refuse(r, a, 'not-ready')
    grant(r, a)
    await waitFor(() => submitted.length === 1, { what: 'the granted job submitted' })
    expect(submitted).toEqual([a.taskId])
  })

  it('after at-capacity waits, then claims the same task again', async () => {
    const { runner: r, claims } = await runner(1)
    const [a, b] = [offer(1), offer(2)]
    r.receive(a)
    r.receive(b)
    refuse(r, a, 'at-capacity')
    r.receive(offer(0)) // not what the gateway is waiting for: the wait goes on
    expect(claims()).toHaveLength(1)
    const again = await waitFor(() => claims()[1], { what: 'a claim after the backoff' })
    // The oldest it holds: the task that arrived during the wait.
    expect(again.taskId).not.toBe(b.taskId)
    expect(claims()).toHaveLength(2)
  })

  it('drops the attempt on every other refusal and claims the next, through 2,000 offers other GPUs took', async () => {
    const { runner: r, inbox, claims } = await runner(1)
    const held = Array.from({ length: 2_000 }, (_, i) => offer(i + 1))
    for (const m of held) r.receive(m)
    const reasons: ClaimRefusal[] = ['not-queued', 'stale-attempt', 'expired', 'unknown-task']
    const started = performance.now()
    for (const [i, m] of held.entries()) {
      expect(claims()[i]?.taskId).toBe(m.taskId)
      refuse(r, m, reasons[i % reasons.length] ?? 'not-queued')
    }
    const ms = performance.now() - started
    console.log(`runner: 2000 refused offers dropped in ${ms.toFixed(0)} ms`)
    expect(claims()).toHaveLength(2_000)
    expect(inbox.all()).toEqual([])
    expect(inbox.busy()).toBe(0)
  })

  it('closing while a submit is under way lets it store the service task id first', async () => {
    let answer = (): void => undefined
    const answered = new Promise<void>((resolve) => {
      answer = resolve
    })
    const { runner: r, inbox, submitted } = await runner(1, () => answered)
    const m = offer(1)
    r.receive(m)
    grant(r, m)
    await waitFor(() => submitted.length === 1, { what: 'submit sent' })
    const closed = r.close()
    answer()
    await closed
    // Resumed after the restart by polling that job, not failed as a submit of unknown fate.
    expect(inbox.get(m.taskId)).toMatchObject({
      phase: 'running',
      serviceTaskId: `svc-${m.taskId}`,
    })
  })
})
