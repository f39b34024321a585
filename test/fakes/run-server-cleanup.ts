/**
 * run_server's cleanup thread: every `cleanup_interval_seconds` (first after one interval), every
 * entry of `uploads/` and `outputs/` whose mtime is older than `file_ttl_seconds` is removed, except
 * `uploads/store/` (the pool is managed apart, docs/real-services.md §1), and expired assets go with their
 * files. A done task's record stays, so its download then answers 404 `结果文件不存在`.
 */
import { lstat, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { sweepAssets, type RunServerAssets } from './run-server-assets.js'
import type { RunServerDisk } from './run-server-files.js'

export interface SweepDeps {
  readonly disk: RunServerDisk
  readonly assets: RunServerAssets
  readonly ttlSeconds: number
}

/** One sweep; resolves with how many entries (files, folders, assets) it removed. */
export async function sweepOldFiles(deps: SweepDeps): Promise<number> {
  const now = Date.now()
  const { uploads, store, outputs } = deps.disk.paths
  let removed = 0
  for (const base of [uploads, outputs]) {
    const names = await readdir(base).catch(() => [])
    for (const name of names) {
      const path = join(base, name)
      if (path === store) continue
      const info = await lstat(path).catch(() => null)
      if (info === null || now - info.mtimeMs <= deps.ttlSeconds * 1000) continue
      await rm(path, { recursive: true, force: true })
      removed++
    }
  }
  removed += await sweepAssets(deps.assets, (path) => deps.disk.discard(path))
  return removed
}

/** Sweep every `intervalMs` until stopped; `onSweep` counts the sweeps done. */
export function startCleanup(
  deps: SweepDeps & { readonly intervalMs: number; readonly log: Logger; onSweep(): void },
): () => void {
  let running: Promise<void> | null = null
  const timer = setInterval(() => {
    if (running) return
    running = sweepOldFiles(deps)
      .then((removed) => {
        if (removed > 0) deps.log.info({ removed }, 'cleanup removed old files')
      })
      .catch((err: unknown) => {
        deps.log.warn({ err }, 'cleanup failed')
      })
      .finally(() => {
        running = null
        deps.onSweep()
      })
  }, deps.intervalMs)
  timer.unref()
  return () => {
    clearInterval(timer)
  }
}
