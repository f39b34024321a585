/**
 * The GPU service's secret: GPU_SERVICE_SECRET, or run_server's own `config/config.ini`
 * (`[server]` `api_secret`), read once at start so the two cannot drift apart. An empty
 * `api_secret` means run_server checks nothing.
 */
import { readFileSync } from 'node:fs'

/** `api_secret` of the `[server]` section of an INI file (Python configparser's plain syntax). */
export function apiSecretFromIni(text: string): string | null {
  let section = ''
  for (const raw of text.split(/\r?\n/u)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/u.exec(line)
    if (header?.[1] !== undefined) {
      section = header[1].trim().toLowerCase()
      continue
    }
    if (section !== 'server') continue
    const entry = /^([^=:]+)[=:](.*)$/u.exec(line)
    if (entry?.[1]?.trim().toLowerCase() === 'api_secret') {
      const value = (entry[2] ?? '').trim()
      return value === '' ? null : value
    }
  }
  return null
}

/** The secret to send, from the variable or the file; throws naming the file when unreadable. */
export function resolveServiceSecret(
  secret: string | undefined,
  configPath: string | undefined,
): string | null {
  if (secret !== undefined) return secret
  if (configPath === undefined) return null
  let text: string
  try {
    text = readFileSync(configPath, 'utf8')
  } catch (err) {
    throw new Error(`GPU_SERVICE_CONFIG: cannot read ${configPath}`, { cause: err })
  }
  return apiSecretFromIni(text)
}
