/**
 * What some tests need from the machine: root to mount a small tmpfs (the full-disk cases) and
 * libfaketime (Debian's `faketime`, for clock steps). Missing, such a test is skipped with a clear
 * message; under `CI=true` (`.ci/run` installs and runs as root) it fails instead.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Under CI a case that cannot run is a failure, never a skip. */
export function mustRun(): boolean {
  return process.env.CI === 'true'
}

/**
 * The reason a need is not met, or null. Under CI an unmet need throws (the test fails with the
 * reason); elsewhere the caller skips with it.
 */
export function unmet(reason: string | null): string | null {
  if (reason !== null && mustRun()) throw new Error(`CI=true and this test cannot run: ${reason}`)
  return reason
}

const FAKETIME_LIBS = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
  '/usr/local/lib/faketime/libfaketime.so.1',
]

/** libfaketime's path, or null when the `faketime` package is not installed. */
export function faketimeLibrary(): string | null {
  return FAKETIME_LIBS.find((path) => existsSync(path)) ?? null
}

/**
 * A wall clock that can be stepped while the process runs: the environment for the child, and
 * `step(offset)` (libfaketime's relative form: `+31m`, `-1d`, `+25h`, `+0`). The monotonic clock
 * is left alone (an NTP step moves the wall clock only); the file is read again at most every
 * second (FAKETIME_CACHE_DURATION), so a step takes effect within about a second.
 */
export interface SteppedClock {
  readonly env: Record<string, string>
  step(offset: string): Promise<void>
  readonly offset: () => string
}

export async function steppedClock(library: string, file: string): Promise<SteppedClock> {
  let current = '+0'
  await writeFile(file, `${current}\n`)
  return {
    env: {
      LD_PRELOAD: library,
      FAKETIME_TIMESTAMP_FILE: file,
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
      FAKETIME_CACHE_DURATION: '1',
    },
    async step(offset) {
      if (!/^[+-]\d+[mhdy]?$/.test(offset)) throw new RangeError(`bad offset: ${offset}`)
      current = offset
      await writeFile(file, `${offset}\n`)
    },
    offset: () => current,
  }
}

/** Why a tmpfs cannot be mounted here, or null when it can (root, `mount` present). */
export function tmpfsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'not Linux: no tmpfs'
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs for the full-disk cases'
  return null
}

/** A tmpfs of `sizeMiB` mounted on `dir` (created); `unmount()` lazily detaches it. */
export async function mountTmpfs(
  dir: string,
  sizeMiB: number,
): Promise<{ readonly dir: string; unmount(): Promise<void> }> {
  await mkdir(dir, { recursive: true })
  await run('mount', ['-t', 'tmpfs', '-o', `size=${String(sizeMiB)}m`, 'tmpfs', dir])
  return {
    dir,
    async unmount() {
      await run('umount', ['-l', dir]).catch(() => undefined)
    },
  }
}
