import { createServer } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  ADAPTERS,
  DEFAULT_ADAPTER,
  adapterNames,
  createAdapter,
  findAdapter,
} from '../../../gpu-bridge/adapters/registry.js'
import { bridgeConfigFromEnv } from '../../../gpu-bridge/config.js'
import { ConfigError } from '../../../lib/config.js'
import { Stage, TaskType } from '../../../protocol/index.js'
import { startFakeRunServer } from '../../fakes/run-server.js'
import { tempDir } from '../../helpers/temp-dir.js'

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

describe('the adapter registry', () => {
  it('refuses an unknown BRIDGE_ADAPTER at start, listing the adapters it knows', () => {
    let thrown: unknown
    try {
      bridgeConfigFromEnv({ BRIDGE_ADAPTER: 'easy-typo' })
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(ConfigError)
    const issues = thrown instanceof ConfigError ? thrown.issues : []
    expect(issues).toHaveLength(1)
    expect(issues[0]).toContain('BRIDGE_ADAPTER')
    expect(issues[0]).toContain('"easy-typo"')
    for (const name of adapterNames()) expect(issues[0]).toContain(name)
    expect(() => createAdapter('easy-typo', { url: 'http://127.0.0.1:1', secret: null })).toThrow(
      `known adapters: ${adapterNames().join(', ')}`,
    )
  })

  it('takes every listed name, and the default when BRIDGE_ADAPTER is unset', () => {
    expect(bridgeConfigFromEnv({}).adapter).toBe(DEFAULT_ADAPTER)
    expect(findAdapter(DEFAULT_ADAPTER)).toBeDefined()
    for (const name of adapterNames()) {
      expect(bridgeConfigFromEnv({ BRIDGE_ADAPTER: name }).adapter).toBe(name)
    }
  })

  it('has entries with distinct names, task types and a vocabulary in the relay’s stages', () => {
    expect(ADAPTERS.length).toBeGreaterThan(0)
    expect(new Set(adapterNames()).size).toBe(ADAPTERS.length)
    for (const entry of ADAPTERS) {
      expect(entry.taskTypes.length, entry.name).toBeGreaterThan(0)
      for (const type of entry.taskTypes) expect(TaskType.safeParse(type).success).toBe(true)
      const meanings = Object.values(entry.vocabulary.words)
      expect(meanings, entry.name).toContain('done')
      expect(meanings, entry.name).toContain('failed')
      for (const meaning of meanings) {
        expect(meaning === 'done' || meaning === 'failed' || Stage.safeParse(meaning).success).toBe(
          true,
        )
      }
      expect(Stage.safeParse(entry.vocabulary.unknown).success).toBe(true)
      const adapter = entry.create({ url: 'http://127.0.0.1:1', secret: null })
      expect(adapter.name).toBe(entry.name)
      expect(adapter.taskTypes).toEqual(entry.taskTypes)
    }
    expect(findAdapter('run-server')?.taskTypes).toEqual(['heygem'])
  })

  it('checks readiness through the entry: down while the port is closed, ready once loaded', async () => {
    const entry = findAdapter('run-server')
    if (entry === undefined) throw new Error('run-server is not listed')
    const signal = AbortSignal.timeout(10_000)
    const port = await closedPort()
    const down = await entry.readiness(
      { url: `http://127.0.0.1:${String(port)}`, secret: null },
      signal,
    )
    expect(down.state).toBe('down')

    const fake = await startFakeRunServer({
      dir: await tempDir('registry'),
      apiSecret: 'right-one',
    })
    onTestFinished(() => fake.close())
    await fake.ready
    const ready = await entry.readiness({ url: fake.url, secret: 'right-one' }, signal)
    expect(ready.state).toBe('ready')
    const refused = await entry.readiness({ url: fake.url, secret: 'wrong-one' }, signal)
    expect(refused.state).toBe('unauthorized')
    const made = createAdapter(entry.name, { url: fake.url, secret: 'right-one' })
    expect((await made.readiness(signal)).state).toBe('ready')
  })
})
