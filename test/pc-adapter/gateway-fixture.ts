/** A real gateway (embedded broker, SQLite, file pool) in a temp folder, closed when the test ends. */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { gatewayTestConfig } from '../../gateway/config.js'
import { startGateway, type GatewayHandle } from '../../gateway/gateway.js'
import { silentLogger } from '../../lib/logger.js'

export interface GatewayFixture {
  readonly gateway: GatewayHandle
  readonly dir: string
  /** Write `size` random bytes to `name` in the temp folder; returns the path. */
  file(name: string, size?: number): Promise<string>
}

export async function startTestGateway(): Promise<GatewayFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'pc-adapter-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  const gateway = await startGateway(gatewayTestConfig(join(dir, 'gateway')), {
    log: silentLogger(),
    startBroker,
  })
  onTestFinished(() => gateway.close())
  return {
    gateway,
    dir,
    async file(name, size = 4096) {
      const path = join(dir, name)
      await writeFile(path, randomBytes(size))
      return path
    },
  }
}
