/**
 * MQTT and HTTP credentials, from a JSON file or the environment; secrets are compared in
 * constant time and never logged.
 *
 * File (`CREDENTIALS_FILE`): `{"gateway": "s", "admin": "s", "gpus": {"gpu-1": "s"}}`.
 * Environment: `GATEWAY_MQTT_SECRET`, `MQTT_ADMIN_SECRET`, `GPU_SECRETS=gpu-1:s1,gpu-2:s2`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { ConfigError } from './config.js'
import { GpuId, RESERVED_USERNAMES } from '../protocol/index.js'

export interface Credentials {
  /** The gateway's MQTT password; null: none (an external broker without auth). */
  readonly gateway: string | null
  /** The read-only admin's MQTT password (MQTT Explorer); null: no admin login. */
  readonly admin: string | null
  /** gpuId → secret, for MQTT and the bridge's HTTP calls. */
  readonly gpus: Readonly<Record<string, string>>
}

const Secret = z.string().min(8, 'secrets must be at least 8 characters')
const CredentialsFile = z.object({
  gateway: Secret.optional(),
  admin: Secret.optional(),
  gpus: z
    .record(GpuId, Secret)
    .refine((gpus) => !Object.keys(gpus).some((id) => RESERVED_USERNAMES.includes(id)), {
      error: 'a GPU may not be called "gateway" or "admin"',
    })
    .default({}),
})

export function loadCredentials(env: Readonly<Record<string, string | undefined>>): Credentials {
  const file = env.CREDENTIALS_FILE
  if (file !== undefined && file !== '') {
    let json: unknown
    try {
      json = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new ConfigError('credentials', [
        `CREDENTIALS_FILE: cannot read ${file} (${String(err)})`,
      ])
    }
    const parsed = CredentialsFile.safeParse(json)
    if (!parsed.success) {
      throw new ConfigError(
        'credentials',
        parsed.error.issues.map((i) => `CREDENTIALS_FILE ${i.path.join('.')}: ${i.message}`),
      )
    }
    return Object.freeze({
      gateway: parsed.data.gateway ?? null,
      admin: parsed.data.admin ?? null,
      gpus: Object.freeze({ ...parsed.data.gpus }),
    })
  }
  const gpus: Record<string, string> = {}
  const issues: string[] = []
  for (const entry of (env.GPU_SECRETS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = entry.indexOf(':')
    const id = entry.slice(0, at)
    const secret = entry.slice(at + 1)
    if (at <= 0 || !GpuId.safeParse(id).success || RESERVED_USERNAMES.includes(id)) {
      issues.push(
        `GPU_SECRETS: "${id || entry.slice(0, 10)}…" is not a GPU id (write gpu-1:secret)`,
      )
    } else if (!Secret.safeParse(secret).success) {
      issues.push(`GPU_SECRETS: the secret of ${id} must be at least 8 characters`)
    } else {
      gpus[id] = secret
    }
  }
  for (const key of ['GATEWAY_MQTT_SECRET', 'MQTT_ADMIN_SECRET'] as const) {
    const value = env[key]
    if (value !== undefined && value !== '' && !Secret.safeParse(value).success) {
      issues.push(`${key}: must be at least 8 characters`)
    }
  }
  if (issues.length > 0) throw new ConfigError('credentials', issues)
  return Object.freeze({
    gateway: nonEmpty(env.GATEWAY_MQTT_SECRET),
    admin: nonEmpty(env.MQTT_ADMIN_SECRET),
    gpus: Object.freeze(gpus),
  })
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value
}

/** Constant-time comparison of a presented secret with the expected one. */
export function secretMatches(
  presented: string | Buffer | undefined,
  expected: string | null,
): boolean {
  // Anything else (undefined, or a value a bad lookup produced) never matches.
  if (typeof expected !== 'string') return false
  if (typeof presented !== 'string' && !Buffer.isBuffer(presented)) return false
  // Hash both first: timingSafeEqual needs equal lengths, and lengths must not leak either.
  const a = createHash('sha256').update(presented).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}
