import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { openDb } from '../../../gateway/db.js'
import { DEFAULT_WEBHOOK_CONFIG } from '../../../gateway/config-operations.js'
import { WebhookDispatcher } from '../../../gateway/webhooks/webhook-dispatch.js'
import { WebhookStore, type DeliveryRow } from '../../../gateway/webhooks/webhook-store.js'
import { tempDir } from '../../helpers/temp-dir.js'
import { startWebhookReceiver } from '../../helpers/webhook-receiver.js'
import { waitFor } from '../../helpers/wait-for.js'

const log = pino({ level: 'silent' })
let dispatcher: WebhookDispatcher | undefined

afterEach(async () => {
  await dispatcher?.close()
})

describe('webhook attempts that cannot be recorded', () => {
  it('an attempt whose outcome cannot be written (a full disk) is not made again for 5 s on the relay clock, then is', async () => {
    const dir = await tempDir('webhook-cool-down')
    const db = openDb(join(dir, 'gateway.sqlite'))
    onTestFinished(() => {
      db.close()
    })
    const receiver = await startWebhookReceiver(() => 500)
    const store = new WebhookStore(db)
    // The disk is full: no attempt's outcome can be written, so the row stays due.
    let diskFull = true
    let failedWrites = 0
    const record = store.record.bind(store)
    store.record = (d, message): DeliveryRow => {
      if (diskFull) {
        failedWrites++
        throw new Error('SQLITE_FULL: database or disk is full')
      }
      return record(d, message)
    }
    let relayMs = 1_000_000
    const recorded: DeliveryRow[] = []
    dispatcher = new WebhookDispatcher(
      {
        ...DEFAULT_WEBHOOK_CONFIG,
        key: () => Promise.resolve(Buffer.alloc(32, 7)),
        policy: { allowPrivate: true, ownPort: () => null },
      },
      {
        store,
        log,
        now: () => relayMs,
        wall: Date.now,
        resolve: () => Promise.resolve([{ address: '127.0.0.1', family: 4 }]),
        onDelivery: (row) => recorded.push(row),
      },
    )
    store.enqueue({
      eventId: 1,
      msgId: 'msg_1',
      taskId: 'task-1',
      url: receiver.url,
      body: '{"type":"task.done"}',
      at: relayMs,
    })
    dispatcher.pump()
    await waitFor(() => failedWrites === 1, { what: 'first attempt, not recorded' })
    // Pumped again and again within the hold (as every task event and timer does): not re-sent.
    relayMs += 4_900
    for (let i = 0; i < 5; i++) {
      dispatcher.pump()
      await new Promise((resolve) => setImmediate(resolve))
    }
    // A later attempt would have reached the receiver by the time a second message did.
    store.enqueue({
      eventId: 2,
      msgId: 'msg_2',
      taskId: 'task-2',
      url: `${receiver.url}?second`,
      body: '{"type":"task.done"}',
      at: relayMs,
    })
    dispatcher.pump()
    await waitFor(() => failedWrites === 2, { what: 'the second message, not recorded' })
    expect(receiver.received.map((r) => r.path)).toEqual(['/hook', '/hook?second'])

    // Once the hold is over (relay clock) and the disk has room, the first is sent again.
    diskFull = false
    relayMs += 200
    dispatcher.pump()
    await waitFor(() => recorded.some((r) => r.event_id === 1), { what: 'first recorded' })
    expect(receiver.received.filter((r) => r.path === '/hook')).toHaveLength(2)
    expect(recorded.find((r) => r.event_id === 1)).toMatchObject({ attempt: 1, status: 'failed' })
  })
})
