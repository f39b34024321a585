/**
 * A broker that keeps a bridge's session but loses what was queued in it (a Mosquitto restored
 * from its last autosave, aedes' queue bugs, a session taken over): the bridge's first birth says
 * `resumed`, so the gateway sends nothing then; once no more offers arrive, its `settled` birth
 * lists what it holds and the gateway sends the rest (docs/design.md §3.3). The GPU service is
 * down throughout, so nothing else (a claim's `not-next`, the idle-GPU safety net) can deliver.
 */
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { gpuPresence } from '../helpers/gateway-view.js'
import { submitFresh } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { bridgeClientId } from '../../protocol/index.js'

function inboxTaskIds(path: string): string[] {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    return db
      .prepare<[], { task_id: string }>('SELECT task_id FROM inbox ORDER BY ord')
      .all()
      .map((r) => r.task_id)
  } finally {
    db.close()
  }
}

describe('a resumed session that lost its queued offers', () => {
  it('gets them from the gateway once its settled birth says what it holds', async () => {
    const dir = await tempDir('settled-birth')
    const persistencePath = join(dir, 'gateway', 'broker.sqlite')
    const broker = { host: '127.0.0.1', port: 0, wsPort: null, persistencePath, tls: null }
    const first = await startTestGateway(dir, { broker })
    const gpu = await startTestGpu(dir, 100)
    const bridge = await startTestBridge(dir, { gateway: first, gpu })
    await waitFor(async () => (await gpuPresence(first.url)).online, { what: 'GPU online' })
    await bridge.close()
    await waitFor(async () => !(await gpuPresence(first.url)).online, { what: 'GPU offline' })
    const ids = [await submitFresh(first.url), await submitFresh(first.url)]
    ids.push(await submitFresh(first.url))
    const ports = {
      http: Number(new URL(first.url).port),
      mqtt: Number(new URL(first.mqttUrl).port),
    }
    await first.close()

    // The broker loses the queued offers but keeps the session (and its subscriptions).
    const db = new Database(persistencePath)
    const lost = db
      .prepare('DELETE FROM outgoing WHERE client_id = ?')
      .run(bridgeClientId('gpu-1')).changes
    const kept = db
      .prepare<[string], { n: number }>(
        'SELECT COUNT(*) AS n FROM subscriptions WHERE client_id = ?',
      )
      .get(bridgeClientId('gpu-1'))
    db.close()
    expect(lost).toBeGreaterThanOrEqual(ids.length)
    expect(kept?.n).toBeGreaterThan(0)

    const second = await startTestGateway(dir, {
      port: ports.http,
      broker: { ...broker, port: ports.mqtt },
    })
    // Its GPU service is down: it claims nothing, and no safety net sends to a GPU not ready.
    await startTestBridge(dir, { gateway: second, gpu: { url: 'http://127.0.0.1:9' } })
    const inbox = join(dir, 'bridge', 'bridge.sqlite')
    await waitFor(() => inboxTaskIds(inbox).length === ids.length, {
      what: 'every lost offer in the inbox',
      timeoutMs: 15_000,
      intervalMs: 200,
    })
    expect(inboxTaskIds(inbox).sort()).toEqual([...ids].sort())
    for (const id of ids) expect(second.store.get(id)?.state).toBe('queued')
  })
})
