/**
 * A process's wall clock under libfaketime (Debian's `faketime`), stepped while it runs, as NTP or
 * a resumed VM would: the environment preloads libfaketime.so.1 with FAKETIME_TIMESTAMP_FILE,
 * which `step` rewrites (atomically, by rename). FAKETIME_DONT_FAKE_MONOTONIC=1 leaves the
 * monotonic clock alone (a step moves the wall clock only). libfaketime re-reads the file at
 * most every FAKETIME_CACHE_DURATION seconds (10 by default; 1 here; FAKETIME_NO_CACHE=1 would
 * read it on every clock call), so a step is seen within about a second.
 */
import { existsSync } from 'node:fs'
import { rename, writeFile } from 'node:fs/promises'

const CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
  '/usr/local/lib/faketime/libfaketime.so.1',
]

/** How long after a step the process is sure to have seen it. */
export const FAKETIME_SEEN_WITHIN_MS = 1_500

export function libfaketimePath(): string | null {
  return CANDIDATES.find((path) => existsSync(path)) ?? null
}

export interface SteppedClock {
  /** Environment for the process whose clock is stepped. */
  readonly env: Record<string, string>
  /** The wall clock's offset from the real one now, in seconds. */
  readonly offsetS: () => number
  /** Set the offset from the real clock (seconds, forward or back). */
  set(offsetS: number): Promise<void>
}

/** A clock for one process, starting at the real time; `file` is where the offset is kept. */
export async function steppedClock(lib: string, file: string): Promise<SteppedClock> {
  let offset = 0
  const write = async (seconds: number): Promise<void> => {
    const text = `${seconds >= 0 ? '+' : '-'}${String(Math.abs(Math.round(seconds)))}\n`
    await writeFile(`${file}.next`, text)
    await rename(`${file}.next`, file)
  }
  await write(0)
  return {
    env: {
      LD_PRELOAD: lib,
      FAKETIME_TIMESTAMP_FILE: file,
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
      FAKETIME_CACHE_DURATION: '1',
    },
    offsetS: () => offset,
    async set(offsetS) {
      offset = Math.round(offsetS)
      await write(offset)
    },
  }
}
