import { createServer } from 'node:http'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, type CliIo } from '../../pc-adapter/cli-commands.js'
import { startTestGateway } from './gateway-fixture.js'
import { startTestBridge, startTestGpu } from '../helpers/relay.js'
import { forwardRequest, listenForTest } from '../helpers/test-http-server.js'
import { TASK_PATHS } from '../../protocol/index.js'

/**
 * A proxy in front of the gateway that counts requests by path and, when told, answers the task
 * event stream with a 404 as an older gateway (or a proxy that does not know it) would.
 */
async function countingProxy(
  target: string,
  opts: { readonly blockEvents: boolean },
): Promise<{ url: string; count: (path: string) => number }> {
  const upstream = new URL(target)
  const counts = new Map<string, number>()
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    counts.set(path, (counts.get(path) ?? 0) + 1)
    if (opts.blockEvents && path === TASK_PATHS.events) {
      res.writeHead(404, { 'content-type': 'text/html' })
      res.end('<html><body>404 Not Found</body></html>')
      return
    }
    forwardRequest({ upstream, req, res })
  })
  const port = await listenForTest(server)
  return { url: `http://127.0.0.1:${String(port)}`, count: (path) => counts.get(path) ?? 0 }
}

function captureIo(extra: Partial<CliIo> = {}): CliIo & { out: () => string; err: () => string } {
  const out: string[] = []
  const err: string[] = []
  return {
    stdout: (s) => out.push(s),
    stderr: (s) => err.push(s),
    env: {},
    ...extra,
    out: () => out.join(''),
    err: () => err.join(''),
  }
}

async function submitThroughProxy(opts: {
  readonly blockEvents: boolean
  readonly io: ReturnType<typeof captureIo>
}): Promise<{ code: number; count: (path: string) => number }> {
  const fx = await startTestGateway()
  const gpu = await startTestGpu(fx.dir, 1_200)
  await startTestBridge(fx.dir, { gateway: fx.gateway, gpu })
  const proxy = await countingProxy(fx.gateway.url, { blockEvents: opts.blockEvents })
  const audio = await fx.file('a.wav')
  const video = await fx.file('v.mp4')
  const args = ['submit', '--audio', audio, '--video', video, '--license', 'license-push']
  args.push('--out', join(fx.dir, 'result.mp4'), '--poll-ms', '50', '--server', proxy.url)
  return { code: await runCli(args, opts.io), count: proxy.count }
}

describe('gpu-relay submit follows the task', () => {
  it('by push, redrawing one progress line on a terminal, with no status polls', async () => {
    const io = captureIo({ isTTY: true, columns: 200 })
    const { code, count } = await submitThroughProxy({ blockEvents: false, io })
    expect(io.err()).toBe('')
    expect(code).toBe(0)
    expect(count(TASK_PATHS.events)).toBeGreaterThanOrEqual(1)
    expect(count(TASK_PATHS.status)).toBe(0)
    const text = io.out()
    // The bar is redrawn in place: state, bar, percent, estimate.
    const redraws = text.split('\r\x1b[K').slice(1)
    expect(redraws.length).toBeGreaterThan(3)
    expect(redraws.some((r) => /^⏳ 排队中 \[░{20}\]\s+0% · 第 1 位 · /.test(r))).toBe(true)
    expect(redraws.some((r) => /^⚙️ 处理中 \[█+░+\]\s+\d+% · 预计还需约 \d+ 秒 · /.test(r))).toBe(
      true,
    )
    expect(redraws.some((r) => r.startsWith('✅ 已完成 [████████████████████] 100%'))).toBe(true)
    // Redrawn in place: no line ends between two states of the bar.
    expect(redraws.filter((r) => /^(⏳|⚙️)/.test(r)).every((r) => !r.includes('\n'))).toBe(true)
    expect(text).toContain('💾 结果已保存到')
    expect(text).not.toContain('进度推送不可用')
  })

  it('by polling when the event stream answers 404, a line per change off a terminal', async () => {
    const io = captureIo()
    const { code, count } = await submitThroughProxy({ blockEvents: true, io })
    expect(io.err()).toBe('')
    expect(code).toBe(0)
    expect(count(TASK_PATHS.events)).toBe(1)
    expect(count(TASK_PATHS.status)).toBeGreaterThan(1)
    const text = io.out()
    expect(text).toContain('ℹ️ 进度推送不可用，改为定时查询任务状态\n')
    expect(text).not.toContain('\r')
    const lines = text.split('\n')
    expect(lines.some((l) => /^(⏳ 排队中|⚙️ 处理中) \[/.test(l))).toBe(true)
    expect(lines.some((l) => l.startsWith('✅ 已完成 [████████████████████] 100%'))).toBe(true)
    // A line per change: never the same line twice in a row.
    expect(lines.filter((l, i) => l !== '' && l === lines[i - 1])).toEqual([])
  })

  it('by polling only with --poll', async () => {
    const fx = await startTestGateway()
    const gpu = await startTestGpu(fx.dir, 300)
    await startTestBridge(fx.dir, { gateway: fx.gateway, gpu })
    const proxy = await countingProxy(fx.gateway.url, { blockEvents: false })
    const io = captureIo()
    const args = ['submit', '--audio', await fx.file('a.wav'), '--video', await fx.file('v.mp4')]
    args.push('--license', 'l', '--out', join(fx.dir, 'r.mp4'), '--server', proxy.url, '--poll')
    expect(await runCli(args.concat(['--poll-ms', '50']), io)).toBe(0)
    expect(proxy.count(TASK_PATHS.events)).toBe(0)
    expect(proxy.count(TASK_PATHS.status)).toBeGreaterThan(0)
    expect(io.out()).not.toContain('进度推送不可用')
  })
})
