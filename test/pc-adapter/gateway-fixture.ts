/** A real gateway (embedded broker, SQLite, file pool) in a temp folder, closed when the test ends. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { gatewayTestConfig } from '../../gateway/config.js'
import { startGateway, type GatewayHandle } from '../../gateway/gateway.js'
import { md5File } from '../../lib/hash.js'
import { silentLogger } from '../../lib/logger.js'
import { mediaForName } from '../helpers/media.js'
import { TEST_CREDENTIALS } from '../helpers/relay.js'
import type { RelayClient } from '../../pc-adapter/client.js'
import type { TaskSubmitData } from '../../protocol/index.js'

export interface GatewayFixture {
  readonly gateway: GatewayHandle
  readonly dir: string
  /**
   * Write a small media file of the container `name` says (helpers/media.ts), with `size` random
   * bytes of payload, to `name` in the temp folder; returns the path.
   */
  file(name: string, size?: number): Promise<string>
  /** Upload a fresh a.wav and v.mp4 with `client` and submit them under `license`. */
  submitFresh(client: RelayClient, license: string): Promise<TaskSubmitData>
}

export async function startTestGateway(): Promise<GatewayFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'pc-adapter-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  const config = gatewayTestConfig(join(dir, 'gateway'), {
    credentials: TEST_CREDENTIALS,
    mqttAllowAnonymous: false,
  })
  const gateway = await startGateway(config, {
    log: silentLogger(),
    startBroker,
  })
  onTestFinished(() => gateway.close())
  const file = async (name: string, size = 4096): Promise<string> => {
    const path = join(dir, name)
    await writeFile(path, mediaForName(name, size))
    return path
  }
  return {
    gateway,
    dir,
    file,
    async submitFresh(client, license) {
      const audio = await file('a.wav')
      const video = await file('v.mp4')
      const [a, v] = await Promise.all([md5File(audio), md5File(video)])
      await client.uploadFile(audio, { hash: a.hash, ext: '.wav' })
      await client.uploadFile(video, { hash: v.hash, ext: '.mp4' })
      return client.submitTask({
        audio_hash: a.hash,
        audio_ext: '.wav',
        video_hash: v.hash,
        video_ext: '.mp4',
        license_key: license,
      })
    },
  }
}
