/**
 * `npm run mosquitto-config -- --out <folder>`: the files that give Mosquitto 2 the embedded
 * broker's roles (broker/auth.ts), from the credentials the gateway reads (`CREDENTIALS_FILE`, or
 * `GATEWAY_MQTT_SECRET`, `MQTT_ADMIN_SECRET`, `GPU_SECRETS`) and `MQTT_TOPIC_ROOT`:
 * - `mosquitto.conf`: no anonymous logins, persistence on, `max_queued_messages 0`, listeners;
 * - `passwd`: the logins, hashed as `mosquitto_passwd` does (PBKDF2-SHA512, `$7$`), so Mosquitto
 *   need not be installed where this runs;
 * - `acl`: gateway read-write on the topic root; admin read-only on the root and `$SYS`; each GPU
 *   writes its own state and events and reads its own tasks, control, state and the offers.
 *
 * Options: `--out` (required), `--port` (1883), `--host` (all addresses), `--ws-port` (off),
 * `--data-dir` (Mosquitto's persistence folder; default `<out>/data`), `--max-payload-bytes`
 * (MQTT_MAX_PAYLOAD_BYTES, 262144). The README ("Running with Mosquitto") says why each setting.
 */
import { pbkdf2Sync, randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { resolve, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { loadCredentials, type Credentials } from '../lib/credentials.js'
import {
  ADMIN_USERNAME,
  DEFAULT_TOPIC_ROOT,
  GATEWAY_USERNAME,
  topicsFor,
} from '../protocol/index.js'

/** What Mosquitto is given; every path absolute (Mosquitto resolves relative ones from its cwd). */
export interface MosquittoSettings {
  readonly credentials: Credentials
  readonly topicRoot: string
  readonly host: string | null
  readonly port: number
  /** MQTT over WebSocket on this port; null: none. */
  readonly wsPort: number | null
  /** The folder of mosquitto.db. */
  readonly dataDir: string
  /** Where passwd and acl are (mosquitto.conf names them by absolute path). */
  readonly outDir: string
  readonly maxPayloadBytes: number
  /** `user` in the conf: the account Mosquitto runs as when started as root (default mosquitto). */
  readonly runAs?: string
}

export interface MosquittoFiles {
  readonly conf: string
  readonly passwd: string
  readonly acl: string
}

/** Mosquitto 2's default PBKDF2 round count (`mosquitto_passwd`'s `-I` default). */
const PBKDF2_ROUNDS = 101

/** One password file line as `mosquitto_passwd -b` writes it: `$7$rounds$salt$hash`, base64. */
export function mosquittoPasswordLine(username: string, password: string): string {
  const salt = randomBytes(12)
  const hash = pbkdf2Sync(password, salt, PBKDF2_ROUNDS, 64, 'sha512')
  return `${username}:$7$${String(PBKDF2_ROUNDS)}$${salt.toString('base64')}$${hash.toString('base64')}`
}

/** The logins: the gateway, the admin when configured, and every GPU (user name = its gpuId). */
function logins(credentials: Credentials): [string, string][] {
  if (credentials.gateway === null) {
    throw new Error(
      'the gateway has no MQTT secret: set GATEWAY_MQTT_SECRET (or "gateway" in CREDENTIALS_FILE)',
    )
  }
  const all: [string, string][] = [[GATEWAY_USERNAME, credentials.gateway]]
  if (credentials.admin !== null) all.push([ADMIN_USERNAME, credentials.admin])
  for (const [gpuId, secret] of Object.entries(credentials.gpus)) all.push([gpuId, secret])
  return all
}

export function mosquittoFiles(settings: MosquittoSettings): MosquittoFiles {
  const { credentials, topicRoot } = settings
  const topics = topicsFor(topicRoot)
  const passwd = `${logins(credentials)
    .map(([user, secret]) => mosquittoPasswordLine(user, secret))
    .join('\n')}\n`

  const acl: string[] = [
    '# Written by `npm run mosquitto-config`: the roles of broker/auth.ts.',
    '# No line outside a `user` block: a login not named here may do nothing.',
    '',
    `user ${GATEWAY_USERNAME}`,
    `topic readwrite ${topicRoot}/#`,
  ]
  if (credentials.admin !== null) {
    acl.push('', `user ${ADMIN_USERNAME}`, `topic read ${topicRoot}/#`, 'topic read $SYS/#')
  }
  for (const gpuId of Object.keys(credentials.gpus)) {
    acl.push(
      '',
      `user ${gpuId}`,
      `topic write ${topics.gpuState(gpuId)}`,
      `topic write ${topics.gpuEvents(gpuId)}`,
      `topic read ${topics.gpuTasks(gpuId)}`,
      `topic read ${topics.gpuControl(gpuId)}`,
      `topic read ${topics.gpuState(gpuId)}`,
      `topic read ${topics.offers('#')}`,
    )
  }

  const dataDir = settings.dataDir.endsWith('/') ? settings.dataDir : `${settings.dataDir}/`
  const conf: string[] = [
    '# Written by `npm run mosquitto-config`; the README ("Running with Mosquitto") says why.',
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${join(settings.outDir, 'passwd')}`,
    `acl_file ${join(settings.outDir, 'acl')}`,
    '',
    '# Sessions and their queued messages outlive a restart of Mosquitto.',
    'persistence true',
    `persistence_location ${dataDir}`,
    'autosave_interval 60',
    '# A bridge that was off receives its whole backlog: no count or size limit on a queue.',
    'max_queued_messages 0',
    'max_queued_bytes 0',
    '# Sessions of GPUs that are off for weeks are kept (persistent_client_expiration unset).',
    '',
    `max_packet_size ${String(settings.maxPayloadBytes + 64 * 1024)}`,
    ...(settings.runAs === undefined ? [] : [`user ${settings.runAs}`]),
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    '',
    settings.host === null
      ? `listener ${String(settings.port)}`
      : `listener ${String(settings.port)} ${settings.host}`,
    'protocol mqtt',
  ]
  if (settings.wsPort !== null) {
    conf.push(
      '',
      settings.host === null
        ? `listener ${String(settings.wsPort)}`
        : `listener ${String(settings.wsPort)} ${settings.host}`,
      'protocol websockets',
    )
  }
  return { conf: `${conf.join('\n')}\n`, passwd, acl: `${acl.join('\n')}\n` }
}

/** Write mosquitto.conf, passwd and acl into `settings.outDir` (passwd readable by its owner only). */
export async function writeMosquittoFiles(settings: MosquittoSettings): Promise<MosquittoFiles> {
  const files = mosquittoFiles(settings)
  await mkdir(settings.outDir, { recursive: true })
  await mkdir(settings.dataDir, { recursive: true })
  await writeFile(join(settings.outDir, 'mosquitto.conf'), files.conf)
  await writeFile(join(settings.outDir, 'passwd'), files.passwd, { mode: 0o600 })
  await writeFile(join(settings.outDir, 'acl'), files.acl)
  return files
}

function portOption(value: string | undefined, fallback: number | null): number | null {
  if (value === undefined) return fallback
  if (value === 'off') return null
  const port = Number(value)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`not a port: ${value}`)
  }
  return port
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'ws-port': { type: 'string' },
      'data-dir': { type: 'string' },
      'max-payload-bytes': { type: 'string' },
    },
  })
  if (values.out === undefined) {
    throw new Error(
      'usage: npm run mosquitto-config -- --out <folder> [--port 1883] [--ws-port 8083]',
    )
  }
  const outDir = resolve(values.out)
  const settings: MosquittoSettings = {
    credentials: loadCredentials(process.env),
    topicRoot: process.env.MQTT_TOPIC_ROOT || DEFAULT_TOPIC_ROOT,
    host: values.host ?? null,
    port: portOption(values.port, 1883) ?? 1883,
    wsPort: portOption(values['ws-port'], null),
    dataDir: resolve(values['data-dir'] ?? join(outDir, 'data')),
    outDir,
    maxPayloadBytes: Number(values['max-payload-bytes'] ?? 256 * 1024),
  }
  await writeMosquittoFiles(settings)
  process.stdout.write(
    `wrote ${join(outDir, 'mosquitto.conf')}, passwd and acl; run: mosquitto -c ${join(outDir, 'mosquitto.conf')}\n` +
      `then start the gateway with MQTT_URL=mqtt://<this host>:${String(settings.port)}\n`,
  )
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
