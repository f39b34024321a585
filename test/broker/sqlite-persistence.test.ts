import { spawn } from 'node:child_process'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { silentLogger } from '../../lib/logger.js'
import { endClient } from '../../lib/mqtt.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('SQLite persistence for Aedes', () => {
  it('passes the aedes-persistence abstract suite (async mode)', async () => {
    const suite = join(import.meta.dirname, 'aedes-abstract-suite.ts')
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=tap', suite],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    const count = (name: string): number => {
      const match = new RegExp(`^# ${name} (\\d+)$`, 'm').exec(out)
      return match ? Number(match[1]) : Number.NaN
    }
    expect(count('fail'), out.slice(-3000)).toBe(0)
    expect(count('pass')).toBeGreaterThanOrEqual(50)
    expect(code).toBe(0)
  }, 60_000)

  it('delivers all of 2,000 QoS 1 messages published at once to a connected clean-session=false subscriber, live and in order', async () => {
    const dir = await tempDir('persist-live')
    const broker = await startBroker(
      {
        host: '127.0.0.1',
        port: 0,
        wsPort: null,
        persistencePath: join(dir, 'broker.sqlite'),
        auth: null,
        tls: null,
      },
      { log: silentLogger() },
    )
    onTestFinished(() => broker.close())
    const subscriber = await mqtt.connectAsync(broker.url, { clientId: 'sub-live', clean: false })
    onTestFinished(() => endClient(subscriber))
    const received: number[] = []
    subscriber.on('message', (_topic, payload) => received.push(Number(payload.toString())))
    await subscriber.subscribeAsync('load/#', { qos: 1 })

    const publisher = await mqtt.connectAsync(broker.url, { clientId: 'pub-live' })
    onTestFinished(() => endClient(publisher))
    const total = 2_000
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        publisher.publishAsync('load/x', String(i), { qos: 1 }),
      ),
    )
    await waitFor(() => received.length >= total, {
      what: `${String(total)} messages`,
      timeoutMs: 30_000,
    })
    expect(received).toEqual(Array.from({ length: total }, (_, i) => i))
  })
})
