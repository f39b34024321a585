/**
 * The relay under attack, every part in its own process: the gateway (embedded broker) with its
 * data folder on a small tmpfs when one can be mounted and its wall clock under libfaketime when
 * it is installed, the bridge, and the fake run_server (test/fakes/run-server-main.ts, with its stats served on a port).
 */
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Proc, freePort } from '../chaos/processes.js'
import {
  faketimeLibrary,
  mountTmpfs,
  steppedClock,
  tmpfsUnavailable,
  type SteppedClock,
} from '../helpers/system-deps.js'

export const SECRETS = {
  api: 'abuse-api-secret-0123',
  gateway: 'abuse-gateway-mqtt-secret',
  admin: 'abuse-admin-mqtt-secret',
  gpu: 'abuse-gpu-1-secret',
  gpu2: 'abuse-gpu-2-secret',
} as const
export const AUTH = { authorization: `Bearer ${SECRETS.api}` }
export const GPU_AUTH = { authorization: `Bearer gpu.gpu-1.${SECRETS.gpu}` }
export const GPU2_AUTH = { authorization: `Bearer gpu.gpu-2.${SECRETS.gpu2}` }
export const RESULT_SIZE = 4096
export const JOB_MS = 3000
export const UPLOAD_MAX_BYTES = 4 * 1024 * 1024
export const DISK_MIN_FREE_BYTES = 8 * 1024 * 1024
/** Room for the run's own files (the broker keeps a stalled reader's 19 MB) above the minimum. */
export const TMPFS_MIB = 64

export interface FakeGpuStats {
  readonly submissions: readonly {
    taskId: string
    audioHash: string
    videoHash: string
    cached: boolean
  }[]
  readonly asked: readonly string[]
  readonly forgotten: readonly string[]
  readonly completed: readonly string[]
  readonly maxConcurrent: number
}

export interface AbuseRelay {
  readonly http: number
  readonly mqtt: number
  readonly base: string
  readonly mqttUrl: string
  readonly gatewayDir: string
  readonly bridgeDir: string
  readonly gateway: Proc
  readonly bridge: Proc
  readonly gpu: Proc
  /** The gateway's data folder is a tmpfs of TMPFS_MIB (else why not). */
  readonly tmpfs: string | null
  readonly noTmpfsReason: string | null
  /** The gateway's wall clock (else null: libfaketime missing). */
  readonly clock: SteppedClock | null
  readonly faketime: string | null
  gpuStats(): Promise<FakeGpuStats>
  /** The gateway's resident set, MB, from /proc/<pid>/status; null while it is down. */
  gatewayRssMb(): Promise<number | null>
  startGateway(): Promise<void>
  startBridge(extraEnv?: Record<string, string>): Promise<void>
  /** Everything the gateway and broker logged since start (for secrets that must not appear). */
  gatewayLog(): string
  crashes(): readonly { entry: string; code: number | null; signal: string | null }[]
  close(): Promise<void>
}

export async function startAbuseRelay(dir: string): Promise<AbuseRelay> {
  await mkdir(dir, { recursive: true })
  const http = await freePort()
  const mqtt = await freePort()
  const gpuPort = await freePort()
  const statsPort = await freePort()
  const base = `http://127.0.0.1:${String(http)}`
  const mqttUrl = `mqtt://127.0.0.1:${String(mqtt)}`
  const gatewayDir = join(dir, 'gateway')
  const bridgeDir = join(dir, 'bridge')
  let noTmpfsReason = tmpfsUnavailable()
  // Root in a container without CAP_SYS_ADMIN still cannot mount: the disk cases then say why.
  const mount =
    noTmpfsReason === null
      ? await mountTmpfs(gatewayDir, TMPFS_MIB).catch((err: unknown) => {
          noTmpfsReason = `mount -t tmpfs failed: ${String(err).slice(0, 200)}`
          return null
        })
      : null
  const library = faketimeLibrary()
  const clock = library ? await steppedClock(library, join(dir, 'gateway-clock.rc')) : null

  const gpu = new Proc(
    'test/fakes/run-server-main.ts',
    {
      FAKE_GPU_PORT: String(gpuPort),
      FAKE_GPU_STATS_PORT: String(statsPort),
      FAKE_GPU_DIR: join(dir, 'gpu'),
      FAKE_GPU_DURATION_MS: String(JOB_MS),
      FAKE_GPU_RESULT_SIZE: String(RESULT_SIZE),
    },
    'fake run_server listening',
  )
  const gateway = new Proc(
    'gateway/main.ts',
    {
      DATA_DIR: gatewayDir,
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(http),
      BROKER_HOST: '127.0.0.1',
      BROKER_PORT: String(mqtt),
      BROKER_WS_PORT: 'off',
      API_SECRET: SECRETS.api,
      GATEWAY_MQTT_SECRET: SECRETS.gateway,
      MQTT_ADMIN_SECRET: SECRETS.admin,
      GPU_SECRETS: `gpu-1:${SECRETS.gpu},gpu-2:${SECRETS.gpu2}`,
      GPU_IDS: 'gpu-1',
      MAX_ATTEMPTS: '5',
      RATE_LIMIT_SUBMITS_PER_MIN: '60',
      RATE_LIMIT_UPLOADS_PER_MIN: '240',
      UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES),
      HTTP_HEADERS_TIMEOUT_MS: '3000',
      HTTP_IDLE_TIMEOUT_MS: '5000',
      MQTT_CONNECT_TIMEOUT_MS: '3000',
      DISK_MIN_FREE_BYTES: String(DISK_MIN_FREE_BYTES),
    },
    'gateway listening',
  )
  const bridge = new Proc(
    'gpu-bridge/main.ts',
    {
      BRIDGE_GPU_ID: 'gpu-1',
      BRIDGE_SECRET: SECRETS.gpu,
      MQTT_URL: mqttUrl,
      GATEWAY_URL: base,
      GPU_SERVICE_URL: `http://127.0.0.1:${String(gpuPort)}`,
      BRIDGE_DATA_DIR: bridgeDir,
      BRIDGE_POLL_MS: '100',
      BRIDGE_HEARTBEAT_MS: '1000',
      BRIDGE_PROGRESS_INTERVAL_MS: '200',
      BRIDGE_CLAIM_RETRY_MS: '1000',
      BRIDGE_RESEND_MS: '1000',
      BRIDGE_READY_POLL_MS: '500',
      MQTT_KEEPALIVE_S: '3',
    },
    'connected',
  )
  let log = ''
  gateway.onOutput((text) => {
    log += text
  })
  const close = async (): Promise<void> => {
    await bridge.stop()
    await gateway.stop()
    await gpu.stop()
    await mount?.unmount()
    await rm(gatewayDir, { recursive: true, force: true }).catch(() => undefined)
  }
  try {
    await gpu.start()
    await gateway.start(30_000, clock?.env ?? {})
    await bridge.start()
  } catch (err) {
    await close()
    throw err
  }
  return {
    http,
    mqtt,
    base,
    mqttUrl,
    gatewayDir,
    bridgeDir,
    gateway,
    bridge,
    gpu,
    tmpfs: mount ? gatewayDir : null,
    noTmpfsReason,
    clock,
    faketime: library,
    async gpuStats() {
      const res = await fetch(`http://127.0.0.1:${String(statsPort)}/stats`)
      return (await res.json()) as FakeGpuStats
    },
    async gatewayRssMb() {
      const pid = gateway.pid
      if (pid === null) return null
      const status = await readFile(`/proc/${String(pid)}/status`, 'utf8').catch(() => '')
      const match = /VmRSS:\s+(\d+) kB/.exec(status)
      return match ? Number(match[1]) / 1024 : null
    },
    startGateway: () => gateway.start(30_000, clock?.env ?? {}),
    startBridge: (extraEnv = {}) => bridge.start(20_000, extraEnv),
    gatewayLog: () => log,
    crashes: () => [...gpu.unexpectedExits, ...gateway.unexpectedExits, ...bridge.unexpectedExits],
    close,
  }
}
