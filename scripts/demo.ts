/**
 * `npm run demo`: the whole relay in one terminal. Gateway (embedded broker, SQLite), a fake GPU
 * service, and two PCs that submit while the GPU is off; after a delay the GPU "boots" (the bridge
 * starts) and the queue drains in order. Prints the figures at the end.
 *
 * DEMO_BRIDGE_DELAY_MS (default 6000), DEMO_JOB_MS (default 4000), DEMO_TASKS (default 3).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import pretty from 'pino-pretty'
import { startBroker } from '../broker/broker.js'
import { gatewayTestConfig } from '../gateway/config.js'
import { startGateway } from '../gateway/gateway.js'
import { startBridge } from '../gpu-bridge/bridge.js'
import { bridgeTestConfig } from '../gpu-bridge/config.js'
import { RelayClient } from '../pc-adapter/client.js'
import { renderVideo } from '../pc-adapter/submit-flow.js'
import { mp4Bytes, wavBytes } from '../test/helpers/media.js'
import { md5Buffer } from '../lib/hash.js'
import { startFakeRunServer } from '../test/fakes/run-server.js'

const bridgeDelayMs = Number(process.env.DEMO_BRIDGE_DELAY_MS ?? 6000)
const jobMs = Number(process.env.DEMO_JOB_MS ?? 4000)
const taskCount = Number(process.env.DEMO_TASKS ?? 3)

const log = pino(
  { level: process.env.LOG_LEVEL ?? 'info' },
  pretty({
    colorize: true,
    sync: true,
    singleLine: true,
    translateTime: 'HH:MM:ss.l',
    ignore: 'pid,hostname,v',
  }),
)
const say = (text: string): void => {
  process.stdout.write(`\n\x1b[1m▶ ${text}\x1b[0m\n`)
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gpu-relay-demo-'))
  const cleanups: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })]
  try {
    say('Starting the relay: gateway + embedded MQTT broker + SQLite (GPU is switched off)')
    const gateway = await startGateway(
      gatewayTestConfig(join(dir, 'gateway'), { runEstimateS: Math.ceil(jobMs / 1000) }),
      { log, startBroker },
    )
    cleanups.unshift(() => gateway.close())
    const gpu = await startFakeRunServer({ dir: join(dir, 'gpu'), durationMs: jobMs, log })
    cleanups.unshift(() => gpu.close())
    log.info({ url: gpu.url }, 'fake GPU service (run_server) ready, but its bridge is not running')

    const avatar = join(dir, 'avatar.mp4')
    const avatarBytes = mp4Bytes('demo-avatar', 256 * 1024)
    await writeFile(avatar, avatarBytes)
    const avatarHash = md5Buffer(avatarBytes)
    const pcs = ['PC-ALICE', 'PC-BOB']
    const client = new RelayClient({ baseUrl: gateway.url })
    say(`Two PCs submit ${String(taskCount)} tasks while the GPU is off`)
    const renders: Promise<unknown>[] = []
    for (let i = 0; i < taskCount; i++) {
      const audio = join(dir, `speech-${String(i)}.wav`)
      await writeFile(audio, wavBytes(`demo-speech-${String(i)}`, 64 * 1024))
      const license = pcs[i % pcs.length] ?? 'PC'
      let submitted = false
      renders.push(
        renderVideo({
          client,
          audioPath: audio,
          videoPath: avatar,
          licenseKey: license,
          outPath: join(dir, `result-${String(i)}.mp4`),
          pollMs: 500,
          onSubmitted: (s) => {
            submitted = true
            process.stdout.write(`  [${license}] ${s.task_id.slice(0, 8)}… ${s.status}: ${s.msg}\n`)
          },
          onUpdate: (line, status) => {
            if (status && status.status !== 'queued')
              process.stdout.write(`  [${license}] ${status.task_id.slice(0, 8)}… ${line}\n`)
          },
        }),
      )
      await waitUntil(() => submitted)
    }

    say(`The GPU machine boots in ${String(bridgeDelayMs / 1000)} s …`)
    await sleep(bridgeDelayMs)
    say('GPU is up: starting gpu-bridge; the queue drains by itself')
    const bridgeStartedAt = Date.now()
    const bridge = await startBridge(
      bridgeTestConfig(
        {
          gpuId: 'gpu-1',
          mqttUrl: gateway.mqttUrl,
          gatewayUrl: gateway.url,
          serviceUrl: gpu.url,
          dataDir: join(dir, 'bridge'),
        },
        { pollMs: 1000, progressIntervalMs: 500, heartbeatMs: 15_000, keepaliveS: 15 },
      ),
      { log },
    )
    cleanups.unshift(() => bridge.close())
    await Promise.all(renders)

    say('All done. Figures from this run:')
    const rows = gateway.store.all()
    const claims = rows.map((r) => r.claimed_at ?? Infinity)
    const firstClaim = Math.min(...claims)
    const overheads = rows.map((r) => (r.finished_at ?? 0) - (r.claimed_at ?? 0) - jobMs)
    const mean = overheads.reduce((a, b) => a + b, 0) / overheads.length
    process.stdout.write(
      [
        `  tasks run:                                ${String(rows.length)} (GPU service saw ${String(gpu.stats.submissions.length)} submissions, max ${String(gpu.stats.maxConcurrent)} at once)`,
        `  avatar video uploads to the GPU:          ${String(gpu.stats.uploads.filter((u) => u.hash === avatarHash).length)}`,
        `  bridge start → first task claimed:        ${String(firstClaim - bridgeStartedAt)} ms`,
        `  per task, claim → done minus GPU's ${String(jobMs)} ms: mean ${mean.toFixed(0)} ms (${overheads.map((o) => String(o)).join(', ')} ms)`,
        '',
      ].join('\n'),
    )
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined)
  }
}

async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await sleep(20)
}

main().catch((err: unknown) => {
  process.stderr.write(
    `demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  )
  process.exit(1)
})
