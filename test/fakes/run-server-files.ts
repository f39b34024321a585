/**
 * The fake run_server's md5 file pool on disk (`<dir>/<md5><ext>`, as the real service keeps it) and
 * its multipart upload: streamed to a temporary file while hashing, then renamed under the real md5.
 * A claimed hash that does not match the bytes is answered with the real one (`hash_matched: false`).
 */
import busboy from 'busboy'
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { extname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { AppError } from '../../lib/errors.js'
import { Md5Tap } from '../../lib/hash.js'
import { Ext, Md5, type UploadFileData } from '../../protocol/index.js'

interface TempFile {
  readonly path: string
  readonly hash: string
  readonly size: number
}

export class FakeFilePool {
  readonly #dir: string
  readonly #tmp: string

  private constructor(dir: string) {
    this.#dir = dir
    this.#tmp = join(dir, '.tmp')
  }

  /** Creates the folder; partial uploads left by a previous run are removed. */
  static async open(dir: string): Promise<FakeFilePool> {
    const pool = new FakeFilePool(dir)
    await rm(pool.#tmp, { recursive: true, force: true })
    await mkdir(pool.#tmp, { recursive: true })
    return pool
  }

  pathOf(hash: string, ext: string): string {
    return join(this.#dir, `${hash}${ext}`)
  }

  async has(hash: string, ext: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(hash, ext))).isFile()
    } catch {
      return false
    }
  }

  /** Stream into a temporary file, hashing on the way; the file is removed if the stream fails. */
  async writeTemp(source: Readable): Promise<TempFile> {
    const path = join(this.#tmp, randomBytes(8).toString('hex'))
    const tap = new Md5Tap()
    try {
      await pipeline(source, tap, createWriteStream(path))
    } catch (err) {
      await rm(path, { force: true })
      throw err
    }
    return { path, ...tap.result() }
  }

  async commit(temp: TempFile, ext: string): Promise<void> {
    await rename(temp.path, this.pathOf(temp.hash, ext))
  }

  async discard(temp: TempFile): Promise<void> {
    await rm(temp.path, { force: true })
  }
}

/** `POST upload_file`: multipart fields `file`, `hash`, `ext`, in any order. */
export async function receiveUpload(
  req: IncomingMessage,
  pool: FakeFilePool,
): Promise<UploadFileData> {
  let parser: busboy.Busboy
  try {
    parser = busboy({ headers: req.headers, limits: { files: 1, fields: 10, fieldSize: 1024 } })
  } catch (err) {
    throw new AppError(
      'BAD_UPLOAD',
      400,
      '上传必须是 multipart/form-data（字段 file、hash、ext）',
      {
        cause: err,
      },
    )
  }
  const fields = new Map<string, string>()
  const received: { file: Promise<TempFile> | null; filename: string } = {
    file: null,
    filename: '',
  }
  parser.on('field', (name, value) => fields.set(name, value))
  parser.on('file', (name, stream, info) => {
    if (name !== 'file' || received.file !== null) {
      stream.resume()
      return
    }
    received.filename = info.filename ?? ''
    received.file = pool.writeTemp(stream)
    // Awaited below; this only keeps an early failure from being reported as unhandled.
    received.file.catch(() => undefined)
  })
  try {
    await pipeline(req, parser)
  } catch (err) {
    const temp = await received.file?.catch(() => null)
    if (temp) await pool.discard(temp)
    throw new AppError('BAD_UPLOAD', 400, '上传内容不完整或无法解析', { cause: err })
  }
  if (received.file === null) {
    throw new AppError('VALIDATION_FAILED', 400, '参数错误：缺少文件字段 file')
  }
  let temp: TempFile
  try {
    temp = await received.file
  } catch (err) {
    throw new AppError('UPLOAD_FAILED', 500, '文件保存失败，请重试', { cause: err })
  }
  const claimed = Md5.safeParse(fields.get('hash'))
  const ext = Ext.safeParse(fields.get('ext') ?? extname(received.filename))
  if (!claimed.success || !ext.success) {
    await pool.discard(temp)
    const bad = !claimed.success ? 'hash（必须是 32 位十六进制 md5）' : 'ext（文件扩展名无效）'
    throw new AppError('VALIDATION_FAILED', 400, `参数错误：${bad}`)
  }
  await pool.commit(temp, ext.data)
  return {
    hash: temp.hash,
    ext: ext.data,
    size: temp.size,
    hash_matched: claimed.data === temp.hash,
  }
}
