/** A task offer as the gateway sends it (protocol/messages.ts), for bridge-side tests. */
import { randomUUID } from 'node:crypto'
import type { TaskMessage } from '../../protocol/index.js'

const file = (c: string) => ({ hash: c.repeat(32), ext: '.wav', size: 1 })

/** A fresh task's first attempt at submit order `order`, far from expiry. */
export function offer(order: number): TaskMessage {
  return {
    v: 1,
    taskId: randomUUID(),
    attempt: 1,
    order,
    type: 'heygem',
    input: { audio: file('a'), video: file('b') },
    options: {},
    expiresAt: '2099-01-01T00:00:00.000Z',
  }
}
