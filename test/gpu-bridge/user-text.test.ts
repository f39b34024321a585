import { describe, expect, it } from 'vitest'
import { ServiceUnreachable } from '../../gpu-bridge/adapters/types.js'
import { TEXTS, describeFailure, engineReason, userSafe } from '../../gpu-bridge/user-text.js'
import { HttpError } from '../../lib/http-client.js'

describe("the owner's words for a failed job", () => {
  it("takes the engine's reason from run_server's error, else from its message", () => {
    expect(engineReason('未检测到人脸', '合成失败: 未检测到人脸')).toBe('未检测到人脸')
    expect(engineReason('', '合成失败: 视频中人脸过小')).toBe('视频中人脸过小')
    expect(engineReason(null, '合成失败：音频解码失败')).toBe('音频解码失败')
  })

  it('never passes on URLs or English library messages', () => {
    expect(engineReason('CUDA out of memory. Tried to allocate 2.00 GiB', '')).toBe(
      TEXTS.engineInternal,
    )
    expect(userSafe('下载失败 http://10.0.0.5:8383/api/heygem/download?task_id=1')).toBe('下载失败')
    // Mixed: the Chinese clauses stay, the library's sentence and the paths go.
    expect(
      engineReason(
        "视频处理失败: [Errno 2] No such file or directory: '/root/heygem/temp/x.mp4'",
        '',
      ),
    ).toBe('视频处理失败')
    expect(engineReason(null, '合成失败: RuntimeError: CUDA out of memory. 显存不足')).toBe(
      '显存不足',
    )
    expect(engineReason('读取 C:\\data\\a.wav 失败', '')).toBe('读取 失败')
    expect(engineReason('GPU 显存不足，请稍后重试', '')).toBe('GPU 显存不足，请稍后重试')
    expect(engineReason('第 3/250 帧人脸检测失败', '')).toBe('第 3/250 帧人脸检测失败')
    const refused = new HttpError('cannot reach http://127.0.0.1:8383/x: fetch failed', {
      status: 0,
      code: null,
      body: null,
    })
    expect(describeFailure(refused)).toBe(TEXTS.unreachable)
    expect(describeFailure(new ServiceUnreachable('connect ECONNREFUSED 127.0.0.1:8383'))).toBe(
      TEXTS.unreachable,
    )
    expect(describeFailure(new Error('socket hang up'))).toBe(TEXTS.generic)
    const denied = new HttpError('鉴权失败', {
      status: 401,
      code: 401,
      body: { code: 401, msg: '鉴权失败' },
    })
    expect(describeFailure(denied)).toBe(TEXTS.unauthorized)
  })
})
