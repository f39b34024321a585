import { describe, expect, it } from 'vitest'
import { HttpError } from '../../lib/http-client.js'
import { requestErrorText } from '../../pc-adapter/status-text.js'

const refused = (status: number, body: unknown): HttpError =>
  new HttpError('server message', { status, code: typeof body === 'object' ? status : null, body })

describe('requestErrorText', () => {
  it("words a refusal by its code from the error catalog, the server's words when they are the code's", () => {
    const unknownId = { code: 404, msg: '任务 abc 不存在', data: { error: 'TASK_NOT_FOUND' } }
    expect(requestErrorText(refused(404, unknownId))).toBe('任务 abc 不存在')
    const foreign = { code: 404, msg: 'Not Found', data: { error: 'TASK_NOT_FOUND' } }
    expect(requestErrorText(refused(404, foreign))).toBe('任务不存在，请检查任务编号')
    const noMsg = { code: 401, data: { error: 'UNAUTHORIZED' } }
    expect(requestErrorText(refused(401, noMsg))).toBe('鉴权失败')
    const wait = { code: 429, msg: '提交过于频繁，请 7 秒后再试', data: { error: 'RATE_LIMITED' } }
    expect(requestErrorText(refused(429, wait))).toBe('提交过于频繁，请 7 秒后再试')
  })

  it('falls back to the server’s msg for an unknown code, and to the HTTP status without one', () => {
    const newer = { code: 409, msg: '新版本的错误', data: { error: 'SOMETHING_NEW' } }
    expect(requestErrorText(refused(409, newer))).toBe('新版本的错误')
    expect(requestErrorText(refused(409, { code: 409, data: { error: 'SOMETHING_NEW' } }))).toBe(
      '请求被服务器拒绝（HTTP 409）（SOMETHING_NEW）',
    )
    // run_server's own shape, no data.error: its msg.
    expect(requestErrorText(refused(400, { code: 400, msg: '缺少 task_id' }))).toBe('缺少 task_id')
    // A proxy's page.
    expect(requestErrorText(refused(502, '<html>Bad Gateway</html>'))).toBe(
      '服务器暂时无法处理请求（HTTP 502），请稍后再试',
    )
  })

  it('keeps the client’s own words when no reply came, or a reply it could not read', () => {
    const offline = new HttpError('无法连接 gpu-relay 网关（http://x）：connect ECONNREFUSED', {
      status: 0,
      code: null,
      body: null,
    })
    expect(requestErrorText(offline)).toBe(offline.message)
    const partial = new HttpError('下载不完整：收到 1 字节，应为 2 字节', {
      status: 200,
      code: null,
      body: null,
    })
    expect(requestErrorText(partial)).toBe(partial.message)
  })
})
