/**
 * The last stage of the PC app's `run_heygem_online`: `GET /api/heygem/download`, streamed, with the
 * app's checks (a JSON content type is an error; a body under 1,024 bytes is an error) and its texts.
 */
import { GrError, getForTask, type ProgressSession } from './pc-app-progress.js'
import { RequestsError, pyGet, pyJson, pyStr } from './pc-app-requests.js'

/** `a or b or c`: the first truthy value, else the last. */
function firstTruthy(...values: unknown[]): unknown {
  return values.find((v) => Boolean(v)) ?? values.at(-1)
}

function errorOf(json: unknown): unknown {
  return firstTruthy(
    pyGet(json, 'msg', null),
    pyGet(json, 'message', null),
    pyGet(json, 'error', null),
  )
}

async function readAll(body: ReadableStream<Uint8Array> | null): Promise<Buffer> {
  const chunks: Buffer[] = []
  if (body === null) return Buffer.alloc(0)
  try {
    for await (const chunk of body) chunks.push(Buffer.from(chunk))
  } catch (err) {
    // requests' ChunkedEncodingError
    throw new RequestsError('broken', `("Connection broken: ${String(err)}", ${String(err)})`, {
      cause: err,
    })
  }
  return Buffer.concat(chunks)
}

export async function downloadResult(s: ProgressSession): Promise<Buffer> {
  try {
    const r = await getForTask(s, '/api/heygem/download', 600)
    const contentType = r.res.headers.get('content-type') ?? ''
    if (contentType.includes('application/json')) {
      let message: string
      try {
        const json = await pyJson(r)
        message = pyStr(firstTruthy(errorOf(json), pyStr(json)))
      } catch {
        message = '服务器返回了非视频数据'
      }
      throw new GrError(`下载失败，服务器返回错误: ${message}`)
    }
    const bytes = await readAll(r.res.body)
    if (bytes.length < 1024) throw smallFileError(bytes)
    return bytes
  } catch (err) {
    if (err instanceof GrError) throw err
    if (err instanceof RequestsError) {
      if (err.kind === 'connection') {
        throw new GrError('下载失败，无法连接到合成服务器\n请检查服务器是否在线')
      }
      if (err.kind === 'timeout') {
        throw new GrError('下载超时，服务器响应过慢\n请稍后重试或检查网络连接')
      }
      throw new GrError(`下载合成结果失败: ${err.message}`)
    }
    throw new GrError(`下载过程出错: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/** The app reads a small body as the server's error text when it can. */
function smallFileError(bytes: Buffer): GrError {
  const size = bytes.length
  const detail = size > 0 ? `文件大小: ${size} bytes` : '文件为空'
  let serverErr = ''
  if (size > 0 && size < 4096) {
    // Python counts and slices code points, as Array.from does.
    const raw = bytes.toString('utf8').trim()
    try {
      const json: unknown = JSON.parse(raw)
      try {
        serverErr = pyStr(firstTruthy(errorOf(json), ''))
      } catch {
        serverErr = '' // not a dict: the app's outer `except Exception: pass`
      }
    } catch {
      if (Array.from(raw).length < 500) serverErr = raw
    }
  }
  if (serverErr) {
    const head = Array.from(serverErr).slice(0, 200).join('')
    return new GrError(`服务器返回错误: ${head}\n\n请重新合成视频`)
  }
  return new GrError(
    `下载的视频文件异常（${detail}），可能原因：\n` +
      '1. 服务器合成结果已过期或被清理\n' +
      '2. 服务器磁盘空间不足\n' +
      '3. 网络传输中断\n' +
      '请重新合成视频',
  )
}
