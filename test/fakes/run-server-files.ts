/**
 * run_server's folders under the fake's `dir`, as its config.ini lays them out:
 * `uploads/store/{hash}{ext}` (the md5 pool shared by uploads and assets), `uploads/{task_id}/`
 * (the legacy upload's inputs), `outputs/{task_id}/{task_id}.mp4` (results) and
 * `outputs/cache_{key}/cache_{key}.mp4` (the audio+video cache). The pool and the outputs survive a
 * restart; the TTL sweep (run-server-cleanup.ts) removes old results.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { copyFile, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { FlaskCrash } from './flask-reply.js'
import { fakeResultChunks } from './result-bytes.js'

/** What the fake's folders are, for tests that age or inspect files. */
export interface RunServerPaths {
  readonly uploads: string
  readonly store: string
  readonly outputs: string
}

/** A file name made of client text must stay one name inside its folder. */
function safeName(name: string): string {
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
    throw new FlaskCrash(`unusable file name ${JSON.stringify(name)}`)
  }
  return name
}

export async function isNonEmptyFile(path: string): Promise<boolean> {
  try {
    const info = await stat(path)
    return info.isFile() && info.size > 0
  } catch {
    return false
  }
}

/** `os.utime(path, None)`, ignoring a file that is gone. */
export async function touch(path: string): Promise<void> {
  const now = new Date()
  await utimes(path, now, now).catch(() => undefined)
}

export class RunServerDisk {
  readonly paths: RunServerPaths

  private constructor(dir: string) {
    const uploads = resolve(dir, 'uploads')
    this.paths = { uploads, store: join(uploads, 'store'), outputs: resolve(dir, 'outputs') }
  }

  /** Creates the folders; temporary files left by a previous run are removed. */
  static async open(dir: string): Promise<RunServerDisk> {
    const disk = new RunServerDisk(dir)
    await mkdir(disk.paths.store, { recursive: true })
    await mkdir(disk.paths.outputs, { recursive: true })
    for (const name of await readdir(disk.paths.store)) {
      if (name.startsWith('_tmp_')) await rm(join(disk.paths.store, name), { force: true })
    }
    return disk
  }

  /** `store/{hash}{ext}`; a 500 (as the real one's failed save) for a name that leaves the pool. */
  storePath(hash: string, ext: string): string {
    return join(this.paths.store, safeName(`${hash}${ext}`))
  }

  /** `_file_exists`: present and not empty. */
  async storeHas(hash: string, ext: string): Promise<boolean> {
    return isNonEmptyFile(this.storePath(hash, ext))
  }

  /** Where an incoming file is streamed before it gets its name (`store/_tmp_…`). */
  tempPath(): string {
    return join(this.paths.store, `_tmp_${randomBytes(6).toString('hex')}`)
  }

  resultPath(taskId: string): string {
    const name = safeName(taskId)
    return join(this.paths.outputs, name, `${name}.mp4`)
  }

  cachePath(cacheKey: string): string {
    const name = `cache_${safeName(cacheKey)}`
    return join(this.paths.outputs, name, `${name}.mp4`)
  }

  legacyInputPath(taskId: string, role: 'audio' | 'video', ext: string): string {
    return join(this.paths.uploads, safeName(taskId), safeName(`${role}${ext}`))
  }

  /** Move a received file into place (creating its folder). */
  async place(from: string, to: string): Promise<void> {
    await mkdir(dirname(to), { recursive: true })
    await rename(from, to)
  }

  async discard(path: string): Promise<void> {
    await rm(path, { force: true })
  }

  /**
   * A done job's result: the deterministic bytes for its inputs written under its task id, then
   * (for a submit by hash) copied to the cache, so the same audio+video is a cache hit afterwards.
   */
  async writeResult(task: {
    readonly resultPath: string
    readonly audioHash: string
    readonly videoHash: string
    readonly cacheKey: string | null
    readonly size: number
  }): Promise<void> {
    await mkdir(dirname(task.resultPath), { recursive: true })
    const partial = `${task.resultPath}.part`
    const source = Readable.from(fakeResultChunks(task.audioHash, task.videoHash, task.size))
    await pipeline(source, createWriteStream(partial))
    await rename(partial, task.resultPath)
    if (task.cacheKey === null) return
    const cached = this.cachePath(task.cacheKey)
    await mkdir(dirname(cached), { recursive: true })
    await copyFile(task.resultPath, cached)
  }
}
