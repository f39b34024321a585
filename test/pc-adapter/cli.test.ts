import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { md5File } from '../../lib/hash.js'
import { runCli, type CliIo } from '../../pc-adapter/cli-commands.js'
import { RelayClient } from '../../pc-adapter/client.js'
import { startTestGateway } from './gateway-fixture.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { startTestBridge, startTestGpu } from '../helpers/relay.js'

function captureIo(env: Record<string, string | undefined> = {}): CliIo & {
  out: () => string
  err: () => string
} {
  const out: string[] = []
  const err: string[] = []
  return {
    stdout: (s) => out.push(s),
    stderr: (s) => err.push(s),
    env,
    out: () => out.join(''),
    err: () => err.join(''),
  }
}

async function queuedTask(): Promise<{ url: string; taskId: string }> {
  const fx = await startTestGateway()
  const client = new RelayClient({ baseUrl: fx.gateway.url })
  const submit = await fx.submitFresh(client, 'license-cli-test')
  return { url: fx.gateway.url, taskId: submit.task_id }
}

describe('gpu-relay CLI', () => {
  it('prints a queued task’s status in Chinese', async () => {
    const { url, taskId } = await queuedTask()
    const io = captureIo()
    expect(await runCli(['status', taskId, '--server', url], io)).toBe(0)
    const text = io.out()
    expect(text).toContain(`任务编号：${taskId}`)
    expect(text).toContain('状态：排队中（queued）')
    expect(text).toContain('排队位置：第 1 位')
    expect(text).toMatch(/预计开始：约 \d+ (秒|分钟)后/)
    expect(text).toContain('GPU 服务器未上线')
    expect(io.err()).toBe('')
  })

  it('takes the server from GPU_RELAY_URL when --server is absent', async () => {
    const { url, taskId } = await queuedTask()
    const io = captureIo({ GPU_RELAY_URL: url, HEYGEM_SERVER_URL: 'http://127.0.0.1:1' })
    expect(await runCli(['status', taskId], io)).toBe(0)
    expect(io.out()).toContain('状态：排队中')
  })

  it('exits 2 with usage on stderr when submit lacks its arguments', async () => {
    const io = captureIo()
    expect(await runCli(['submit'], io)).toBe(2)
    expect(io.err()).toContain('缺少参数：--audio、--video、--license')
    expect(io.err()).toContain('gpu-relay submit --audio')
    expect(io.out()).toBe('')
  })

  it('exits 2 on an unknown option or command', async () => {
    const io = captureIo()
    expect(await runCli(['status', randomUUID(), '--bogus'], io)).toBe(2)
    expect(io.err()).toContain('参数有误')
    expect(await runCli(['frobnicate'], captureIo())).toBe(2)
    expect(await runCli([], captureIo())).toBe(2)
  })

  it('exits 1 with the server’s message for an unknown task', async () => {
    const { gateway } = await startTestGateway()
    const io = captureIo()
    expect(await runCli(['status', randomUUID(), '--server', gateway.url], io)).toBe(1)
    expect(io.err()).toContain('任务不存在，请检查任务编号')
  })

  it('words a refusal from the error catalog, and a reply with no envelope by its status', async () => {
    const replies: { status: number; type: string; body: string }[] = [
      {
        status: 404,
        type: 'application/json',
        body: JSON.stringify({ code: 404, msg: 'gone', data: { error: 'TASK_NOT_FOUND' } }),
      },
      { status: 502, type: 'text/html', body: '<html><body>Bad Gateway</body></html>' },
    ]
    const server = createServer((_req, res) => {
      const reply = replies.shift() ?? { status: 500, type: 'text/plain', body: '' }
      res.writeHead(reply.status, { 'content-type': reply.type }).end(reply.body)
    })
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    onTestFinished(() => new Promise<void>((done) => server.close(() => done())))
    const { port } = server.address() as AddressInfo
    const url = `http://127.0.0.1:${String(port)}`
    const notFound = captureIo()
    expect(await runCli(['status', randomUUID(), '--server', url], notFound)).toBe(1)
    expect(notFound.err()).toBe('错误：任务不存在，请检查任务编号\n')
    const proxy = captureIo()
    expect(await runCli(['status', randomUUID(), '--server', url], proxy)).toBe(1)
    expect(proxy.err()).toBe('错误：服务器暂时无法处理请求（HTTP 502），请稍后再试\n')
  })

  it('prints usage for --help', async () => {
    const io = captureIo()
    expect(await runCli(['--help'], io)).toBe(0)
    expect(io.out()).toContain('用法')
    expect(io.out()).toContain('gpu-relay status')
  })

  it('submits, follows and saves the result', async () => {
    const fx = await startTestGateway()
    const gpu = await startTestGpu(fx.dir, 300)
    await startTestBridge(fx.dir, { gateway: fx.gateway, gpu })
    const audio = await fx.file('a.wav')
    const video = await fx.file('v.mp4')
    const result = fakeResultBytes(
      (await md5File(audio)).hash,
      (await md5File(video)).hash,
      32 * 1024,
    )
    const out = join(fx.dir, 'result.mp4')
    const io = captureIo({ HEYGEM_SERVER_URL: fx.gateway.url })
    const args = ['submit', '--audio', audio, '--video', video]
    args.push('--license', 'license-cli-test', '--out', out, '--poll-ms', '50')
    expect(await runCli(args, io)).toBe(0)
    expect(io.out()).toContain('📨 任务已提交')
    expect(io.out()).toContain(`💾 结果已保存到：${out}`)
    expect(await readFile(out)).toEqual(result)
  })
})
