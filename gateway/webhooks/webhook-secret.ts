/**
 * The deployment's webhook secret, as Standard Webhooks write it: `whsec_` + base64 of 24 to 64
 * random bytes; the HMAC key is the decoded bytes. WEBHOOK_SECRET when set; else the one in
 * `DATA_DIR/webhook-secret`, made (32 bytes, mode 0600) on the first start, so receivers keep
 * verifying across restarts. The secret is never logged.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'

const PREFIX = 'whsec_'
const FORM = /^whsec_[A-Za-z0-9+/]+={0,2}$/
export const SECRET_FILE = 'webhook-secret'

/** A secret in its written form is well formed (`whsec_` + base64 of 24 to 64 bytes). */
export function isWebhookSecret(secret: string): boolean {
  if (!FORM.test(secret)) return false
  const bytes = Buffer.from(secret.slice(PREFIX.length), 'base64').length
  return bytes >= 24 && bytes <= 64
}

/** The HMAC key of a well-formed secret. */
export function secretKey(secret: string): Buffer {
  if (!isWebhookSecret(secret)) throw new Error('not a webhook secret (whsec_ + base64)')
  return Buffer.from(secret.slice(PREFIX.length), 'base64')
}

/** The configured secret's key, or the data folder's (made on first use). */
export async function loadWebhookKey(o: {
  readonly configured: string | null
  readonly dataDir: string
  readonly log: Logger
}): Promise<Buffer> {
  if (o.configured !== null) return secretKey(o.configured)
  const path = join(o.dataDir, SECRET_FILE)
  const kept = await readFile(path, 'utf8').then(
    (text) => text.trim(),
    (err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      return null
    },
  )
  // Empty: a write cut short by a full disk, before anything was signed with it.
  if (kept !== null && kept !== '') {
    if (!isWebhookSecret(kept)) throw new Error(`${path} does not hold a webhook secret`)
    return secretKey(kept)
  }
  const made = PREFIX + randomBytes(32).toString('base64')
  // `wx`: two gateways starting on one folder cannot both write theirs.
  await writeFile(path, `${made}\n`, { mode: 0o600, flag: kept === '' ? 'w' : 'wx' })
  o.log.info({ path }, 'webhook secret generated')
  return secretKey(made)
}

/** `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `${id}.${timestamp}.${body}`. */
export function signWebhook(
  key: Buffer,
  message: { readonly id: string; readonly timestamp: number; readonly body: string },
): string {
  const signed = `${message.id}.${String(message.timestamp)}.${message.body}`
  return `v1,${createHmac('sha256', key).update(signed).digest('base64')}`
}
