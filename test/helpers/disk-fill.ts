/**
 * A small disk for full-disk faults: a tmpfs mounted over a folder (needs root), filled by one file
 * until the writes fail (or until only a little is left), then emptied by removing that file.
 * Without root the caller skips the fault with `unavailable`; under `CI=true` it must fail instead.
 */
import { execFile } from 'node:child_process'
import { mkdir, open, statfs, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { errorMessage } from '../../lib/errors.js'

const run = promisify(execFile)
const CHUNK = Buffer.alloc(1024 * 1024, 0x5a)

export interface SmallDisk {
  readonly path: string
  /** Bytes free on it now. */
  free(): Promise<number>
  /**
   * Fill it with one file: to the last byte (`leaveBytes` 0: writes then fail with ENOSPC), or
   * until `leaveBytes` remain. Resolves with the bytes written.
   */
  fill(leaveBytes?: number): Promise<number>
  /** Remove the fill file: the space is back. */
  empty(): Promise<void>
  unmount(): Promise<void>
}

/** Why a tmpfs cannot be mounted here, or null when it can (as root). */
export function smallDiskUnavailable(): string | null {
  if (process.platform !== 'linux') return `tmpfs needs Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root (run as root, as .ci/run does)'
  return null
}

/** Mount a tmpfs of `sizeBytes` over `path` (created if missing). */
export async function mountSmallDisk(path: string, sizeBytes: number): Promise<SmallDisk> {
  await mkdir(path, { recursive: true })
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${String(sizeBytes)},mode=0700`, 'tmpfs', path])
  } catch (err) {
    throw new Error(`mount -t tmpfs on ${path} failed: ${errorMessage(err)}`, { cause: err })
  }
  const fillPath = join(path, '.disk-fill')
  const free = async (): Promise<number> => {
    const s = await statfs(path)
    return s.bavail * s.bsize
  }
  return {
    path,
    free,
    async fill(leaveBytes = 0) {
      const file = await open(fillPath, 'a')
      let written = 0
      try {
        for (;;) {
          const room = (await free()) - leaveBytes
          if (leaveBytes > 0 && room <= 0) break
          const chunk = leaveBytes > 0 && room < CHUNK.length ? CHUNK.subarray(0, room) : CHUNK
          try {
            const { bytesWritten } = await file.write(chunk)
            written += bytesWritten
            if (bytesWritten < chunk.length && leaveBytes === 0) break
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
            throw err
          }
        }
      } finally {
        await file.close()
      }
      return written
    },
    async empty() {
      await unlink(fillPath).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      })
    },
    async unmount() {
      // Lazy: a process killed a moment ago may still hold files open on it.
      await run('umount', ['-l', path]).catch(() => undefined)
    },
  }
}
