/**
 * A real browser for the dashboard's tests: Debian's chromium driven by playwright-core (which
 * brings no browser of its own), headless. Missing, the test is skipped with the reason; under
 * `CI=true` (`.ci/run` installs chromium) it fails instead (system-deps.ts).
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { onTestFinished } from 'vitest'
import { unmet } from './system-deps.js'

export const CHROMIUM_PATH = '/usr/bin/chromium'

/** Why no browser test can run here (null: it can); throws under CI. */
export function browserUnavailable(): string | null {
  return unmet(
    existsSync(CHROMIUM_PATH)
      ? null
      : `Debian's chromium is not at ${CHROMIUM_PATH} (apt-get install chromium)`,
  )
}

export async function launchBrowser(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox'],
  })
  onTestFinished(() => browser.close())
  return browser
}

/** `test-output/{name}/`, created: where a browser test leaves its screenshots (not committed). */
export async function screenshotDir(name: string): Promise<string> {
  const dir = join(process.cwd(), 'test-output', name)
  await mkdir(dir, { recursive: true })
  return dir
}
