import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { submitFresh } from '../helpers/pc.js'
import { browserUnavailable, launchBrowser, screenshotDir } from '../helpers/browser.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const ADMIN = 'test-admin-token-dashboard'
const WAIT = { timeout: 20_000 }

/** A task's line in a section of the page, in a state (`data-state`). */
const row = (section: string, taskId: string, state: string): string =>
  `#${section} [data-task-id="${taskId}"][data-state="${state}"]`

async function signIn(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/dashboard`)
  // A wrong token is refused and asked for again, in Chinese.
  await page.locator('#token').fill('not-the-admin-token')
  await page.locator('#login-form button[type=submit]').click()
  await expect
    .poll(() => page.locator('#login-reason').textContent(), WAIT)
    .toMatch(/鉴权失败|令牌/)
  await page.locator('#login').waitFor(WAIT)
  await page.locator('#token').fill(ADMIN)
  await page.locator('#login-form button[type=submit]').click()
  await page.locator('#live[data-status="live"]').waitFor(WAIT)
}

describe('the dashboard in a real browser (chromium)', () => {
  it('shows a task queued while the GPU is off with its estimate, follows it to done without a reload, and cancels another from the page', async (ctx) => {
    const reason = browserUnavailable()
    if (reason !== null) {
      console.warn(`dashboard: skipped, ${reason}`)
      ctx.skip(reason)
      return
    }
    const dir = await tempDir('dashboard')
    const shots = await screenshotDir('dashboard')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN })
    const browser = await launchBrowser()
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } })
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    page.on('dialog', (dialog) => void dialog.accept())

    await signIn(page, gateway.url)
    // Set once: a reload of the page would lose it.
    await page.evaluate(() => Object.assign(globalThis, { dashboardTestMark: 'same page' }))
    await page.locator('[data-gpu-id="gpu-1"][data-presence="offline"]').waitFor(WAIT)
    // How good past estimates were: none measured yet on this gateway.
    await expect.poll(() => page.locator('#estimates').textContent(), WAIT).toMatch(/样本 0 个/)
    // Power on by hand from the page: the request is recorded (reason manual) and shown.
    await page.locator('[data-gpu-id="gpu-1"] [data-power="start"]').click()
    await waitFor(
      async () => {
        const res = await fetch(`${gateway.url}/api/relay/power`, {
          headers: { authorization: `Bearer ${ADMIN}` },
        })
        const body = (await res.json()) as {
          data: { requests: { action: string; reason: string }[] }
        }
        return body.data.requests.some((r) => r.action === 'start' && r.reason === 'manual')
      },
      { what: 'a manual power-on request from the page' },
    )
    await page.locator('[data-gpu-id="gpu-1"] .power-requests').waitFor(WAIT)

    // Submitted while the GPU is off: the page learns of it from the event stream.
    const first = await submitFresh(gateway.url, 'owner-a')
    const queued = page.locator(row('queue', first, 'queued'))
    await queued.waitFor(WAIT)
    await expect.poll(() => queued.locator('.eta').textContent(), WAIT).toMatch(/^预计 .+后开始$/)
    expect(await queued.locator('.pos').textContent()).toBe('第 1 位')
    expect(await queued.locator('.owner').textContent()).toBe('owner-a')
    await page.screenshot({ path: join(shots, '1-queued-gpu-off.png'), fullPage: true })

    // The GPU comes up: the page moves the task to processing.
    const gpu = await startTestGpu(dir, 4_000)
    await startTestBridge(dir, { gateway, gpu })
    await page.locator(row('queue', first, 'processing')).waitFor(WAIT)
    await page.locator(row('history', first, 'processing')).waitFor(WAIT)
    await page.locator('[data-gpu-id="gpu-1"][data-presence="ready"]').waitFor(WAIT)

    // A second task waits behind it; cancelled from its detail on the page.
    const second = await submitFresh(gateway.url, 'owner-b')
    await page.locator(row('queue', second, 'queued')).click()
    const cancel = page.locator('#detail [data-action="cancel"]')
    await cancel.waitFor(WAIT)
    await page.screenshot({ path: join(shots, '2-processing-and-detail.png'), fullPage: true })
    await cancel.click()
    await page.locator('#detail .message[data-state="cancelled"]').waitFor(WAIT)
    await page.locator('#detail [data-kind="cancelled"]').waitFor(WAIT)
    await page.locator('#detail-close').click()
    await page.locator(row('history', second, 'cancelled')).waitFor(WAIT)
    expect(gateway.store.get(second)?.state).toBe('cancelled')

    // The first one finishes: done, counted for the GPU today, still the same page.
    await page.locator(row('history', first, 'done')).waitFor(WAIT)
    await expect
      .poll(() => page.locator('[data-gpu-id="gpu-1"] .done-today').textContent(), WAIT)
      .toBe('1')
    expect(await page.locator('#queue [data-task-id]').count()).toBe(0)
    expect(gpu.stats.submissions).toHaveLength(1)
    const mark: unknown = await page.evaluate('globalThis.dashboardTestMark')
    expect(mark).toBe('same page')
    await page.screenshot({ path: join(shots, '3-done.png'), fullPage: true })

    // Its detail: the whole timeline with the GPU, and the result.
    await page.locator(row('history', first, 'done')).click()
    await page.locator('#detail [data-kind="done"]').waitFor(WAIT)
    const lines = await page.locator('#detail [data-kind]').all()
    const kinds = await Promise.all(lines.map((line) => line.getAttribute('data-kind')))
    expect(kinds[0]).toBe('submitted')
    expect(kinds).toContain('claimed')
    expect(await page.locator('#detail [data-kind="claimed"]').textContent()).toContain('gpu-1')
    // The result, fetched with the token in a header, saved as a file.
    const [download] = await Promise.all([
      page.waitForEvent('download', WAIT),
      page.locator('#detail button', { hasText: '下载结果' }).click(),
    ])
    expect(download.suggestedFilename()).toBe(`${first}.mp4`)
    expect((await stat(await download.path())).size).toBe(32 * 1024)

    // On a phone screen.
    await page.setViewportSize({ width: 390, height: 844 })
    await page.screenshot({ path: join(shots, '4-phone-detail.png'), fullPage: true })
    await page.locator('#detail-close').click()
    await page.screenshot({ path: join(shots, '5-phone.png'), fullPage: true })
    expect(errors).toEqual([])
  }, 90_000)

  it('resumes its event stream after a cut with Last-Event-ID: every event once, none missed, without a reload', async (ctx) => {
    const reason = browserUnavailable()
    if (reason !== null) {
      ctx.skip(reason)
      return
    }
    const dir = await tempDir('dashboard-resume')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN })
    // The page talks to the gateway through a proxy the test can cut.
    const proxy = await startTcpProxy(Number(new URL(gateway.url).port))
    onTestFinished(() => proxy.close())
    const browser = await launchBrowser()
    const page = await browser.newPage()
    await signIn(page, proxy.url('http'))
    const before = await submitFresh(gateway.url)
    await page.locator(`#events [data-kind="submitted"]`).waitFor({ ...WAIT, state: 'attached' })

    proxy.setRefusing(true)
    proxy.cut()
    await page.locator('#live[data-status="retrying"]').waitFor(WAIT)
    // While the page is cut off: two more tasks, one of them cancelled.
    const missed = [await submitFresh(gateway.url), await submitFresh(gateway.url)]
    await fetch(`${gateway.url}/api/relay/admin/tasks/${missed[0] ?? ''}/cancel`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN}` },
    })
    await waitFor(() => gateway.store.get(missed[0] ?? '')?.state === 'cancelled')
    proxy.setRefusing(false)

    await page.locator('#live[data-status="live"]').waitFor(WAIT)
    await page.locator(row('history', missed[0] ?? '', 'cancelled')).waitFor(WAIT)
    await page.locator(row('queue', missed[1] ?? '', 'queued')).waitFor(WAIT)
    const all = gateway.outbox.after(0, 1_000).map((e) => String(e.id))
    const shown = async (): Promise<(string | null)[]> => {
      const items = await page.locator('#events [data-event-id]').all()
      return (await Promise.all(items.map((i) => i.getAttribute('data-event-id')))).reverse()
    }
    // Newest on top: read back oldest first, it is the outbox from the first event on, each once.
    await expect.poll(shown, WAIT).toEqual(all)
    expect(all.length).toBeGreaterThanOrEqual(4)
    expect(gateway.store.get(before)?.state).toBe('queued')
  }, 90_000)

  it('retries a task that failed for good from its detail on the page; it runs again to done', async (ctx) => {
    const reason = browserUnavailable()
    if (reason !== null) {
      ctx.skip(reason)
      return
    }
    const dir = await tempDir('dashboard-retry')
    const shots = await screenshotDir('dashboard')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN })
    const gpu = await startTestGpu(dir, 300)
    await startTestBridge(dir, { gateway, gpu })
    const browser = await launchBrowser()
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    page.on('dialog', (dialog) => void dialog.accept())
    await signIn(page, gateway.url)

    // The GPU service finds no face in the video: a failure that is not retried by itself.
    gpu.failNext('未检测到人脸')
    const task = await submitFresh(gateway.url, 'owner-r')
    await page.locator(row('history', task, 'error')).click()
    const retry = page.locator('#detail [data-action="retry"]')
    await retry.waitFor(WAIT)
    await page.screenshot({ path: join(shots, '6-failed-detail.png'), fullPage: true })
    await retry.click()
    await page.locator('#detail [data-kind="retried"]').waitFor(WAIT)
    await page.locator('#detail-close').click()
    await page.locator(row('history', task, 'done')).waitFor(WAIT)
    expect(gateway.store.get(task)).toMatchObject({ state: 'done', attempt: 2 })
    expect(gpu.stats.submissions).toHaveLength(2)
    expect(errors).toEqual([])
  }, 90_000)
})
