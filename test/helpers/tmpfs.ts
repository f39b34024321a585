/**
 * A small real tmpfs for full-disk tests (mounting needs root). Without root the tests skip with
 * a clear message, except under CI=true, where a case that cannot run fails.
 */
import { execFile } from 'node:child_process'
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { onTestFinished } from 'vitest'

const run = promisify(execFile)

export const IN_CI = process.env.CI === 'true'

async function mount(dir: string, sizeMiB: number): Promise<void> {
  await run('mount', ['-t', 'tmpfs', '-o', `size=${String(sizeMiB)}m`, 'tmpfs', dir])
}

async function unmount(dir: string): Promise<void> {
  // Lazy: a file a crashed child still holds open must not keep the mount (or fail cleanup).
  await run('umount', ['-l', dir]).catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
}

/** Why a tmpfs cannot be mounted here, or null when it can (tried once, with a probe). */
export async function tmpfsProblem(): Promise<string | null> {
  if (process.platform !== 'linux') return 'full-disk tests need Linux (tmpfs)'
  if (process.getuid?.() !== 0) return 'full-disk tests need root to mount a tmpfs'
  const dir = await mkdtemp(join(tmpdir(), 'gpu-relay-tmpfs-probe-'))
  try {
    await mount(dir, 1)
    return null
  } catch (err) {
    return `cannot mount a tmpfs: ${err instanceof Error ? err.message : String(err)}`
  } finally {
    await unmount(dir)
  }
}

/** A fresh tmpfs of `sizeMiB`, unmounted when the test ends. */
export async function smallTmpfs(prefix: string, sizeMiB = 16): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `gpu-relay-${prefix}-`))
  try {
    await mount(dir, sizeMiB)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw new Error(`cannot mount a tmpfs (full-disk tests need root): ${String(err)}`, {
      cause: err,
    })
  }
  onTestFinished(() => unmount(dir))
  return dir
}

/** Free bytes of the file system holding `dir`. */
export function freeBytes(dir: string): number {
  const stats = statfsSync(dir)
  return stats.bavail * stats.bsize
}

/** Fill the file system holding `dir` with one file until not a block is left; returns its path. */
export function fillDisk(dir: string, name = 'filler'): string {
  const path = join(dir, name)
  const fd = openSync(path, 'a')
  try {
    for (const size of [1024 * 1024, 64 * 1024, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 0x5a)
      for (;;) {
        try {
          writeSync(fd, chunk)
        } catch (err) {
          if ((err as { code?: unknown }).code === 'ENOSPC') break
          throw err
        }
      }
    }
  } finally {
    closeSync(fd)
  }
  return path
}
