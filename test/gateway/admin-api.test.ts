import Database from 'better-sqlite3'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AdminReads, HISTORY_FILTERS, type HistoryFilterName } from '../../gateway/admin-reads.js'
import { gpuRow } from '../../gateway/admin-views.js'
import { finalStatus, media, submitFresh, submitTask, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import type { GpuPowerView } from '../../gateway/power/power.js'
import type { PowerRequest } from '../../gateway/power/power-store.js'

const ADMIN = 'test-admin-token-dashboard'

interface Reply {
  readonly status: number
  readonly data: Record<string, unknown>
  readonly msg: string
}

async function admin(
  base: string,
  path: string,
  opts: { readonly token?: string; readonly method?: 'POST' } = {},
): Promise<Reply> {
  const token = opts.token ?? ADMIN
  const res = await fetch(`${base}/api/relay/admin${path}`, {
    method: opts.method ?? 'GET',
    headers: token === '' ? {} : { Authorization: `Bearer ${token}` },
  })
  const body = (await res.json()) as { msg: string; data: Record<string, unknown> }
  return { status: res.status, data: body.data, msg: body.msg }
}

const list = (value: unknown): Record<string, unknown>[] => value as Record<string, unknown>[]

describe('the dashboard admin API (/api/relay/admin/*)', () => {
  it('answers admins only: no token 401, a PC or a GPU token 403', async () => {
    const dir = await tempDir('admin-api-auth')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN, apiSecret: 'pc-secret-0123' })
    expect((await admin(gateway.url, '/gpus', { token: '' })).status).toBe(401)
    expect((await admin(gateway.url, '/gpus', { token: 'pc-secret-0123' })).status).toBe(403)
    const gpu = await admin(gateway.url, '/queue', { token: 'gpu.gpu-1.test-gpu-1-secret' })
    expect(gpu.status).toBe(403)
    expect(gpu.msg).toContain('管理员')
    expect((await admin(gateway.url, '/gpus')).status).toBe(200)
  })

  it('shows a task queued while the GPU is off with its estimate, then its whole timeline once done', async () => {
    const dir = await tempDir('admin-api-flow')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN })
    const taskId = await submitFresh(gateway.url, 'owner-a')
    const queue = await admin(gateway.url, '/queue')
    const queued = list(queue.data.queued)
    expect(queued).toHaveLength(1)
    expect(queued[0]).toMatchObject({ task_id: taskId, owner: 'owner-a', position: 1 })
    expect(queued[0]?.eta_seconds).toBeGreaterThan(0)
    expect(Date.parse(String(queued[0]?.estimated_start))).toBeGreaterThan(Date.now())
    const before = list((await admin(gateway.url, '/gpus')).data.gpus)
    expect(before[0]).toMatchObject({ id: 'gpu-1', online: false, ready: false, done_today: 0 })

    const gpu = await startTestGpu(dir, 100)
    await startTestBridge(dir, { gateway, gpu })
    expect((await finalStatus(gateway.url, taskId)).status).toBe('done')
    const after = list((await admin(gateway.url, '/gpus')).data.gpus)
    expect(after[0]).toMatchObject({ id: 'gpu-1', online: true, ready: true, done_today: 1 })
    // Power on demand is part of every gateway: the GPU's power state, online now.
    expect(after[0]?.power).toMatchObject({ gpu_id: 'gpu-1' })
    expect(JSON.stringify(after[0]?.power)).toMatch(/"state":"(online|idle)"/)

    const detail = await admin(gateway.url, `/tasks/${taskId}`)
    expect(detail.data.task).toMatchObject({
      task_id: taskId,
      state: 'done',
      gpu_id: 'gpu-1',
      result_url: `/api/heygem/download?task_id=${taskId}`,
      inputs: { audio: { ext: '.wav' }, video: { ext: '.mp4' } },
    })
    const kinds = list(detail.data.timeline).map((e) => e.kind)
    expect(kinds[0]).toBe('submitted')
    expect(kinds).toContain('claimed')
    expect(kinds.at(-1)).toBe('done')
    const claimed = list(detail.data.timeline).find((e) => e.kind === 'claimed')
    expect(claimed).toMatchObject({ gpu_id: 'gpu-1', from: 'queued', state: 'processing' })
    // Webhooks are part of every gateway: this task asked for none, so none was attempted.
    expect(detail.data.webhooks).toEqual([])
    expect((await admin(gateway.url, `/tasks/${crypto.randomUUID()}`)).status).toBe(404)
  })

  it('cancels a queued task and retries a failed one', async () => {
    const dir = await tempDir('admin-api-actions')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN })
    const doomed = await submitFresh(gateway.url)
    const cancelled = await admin(gateway.url, `/tasks/${doomed}/cancel`, { method: 'POST' })
    expect(cancelled.status).toBe(200)
    expect(cancelled.data.task).toMatchObject({ state: 'cancelled' })
    expect((await admin(gateway.url, `/tasks/${doomed}/cancel`, { method: 'POST' })).status).toBe(
      409,
    )

    const gpu = await startTestGpu(dir, 100)
    gpu.failNext('未检测到人脸，请更换视频')
    await startTestBridge(dir, { gateway, gpu })
    const failing = await submitFresh(gateway.url)
    expect((await finalStatus(gateway.url, failing)).status).toBe('error')
    const retried = await admin(gateway.url, `/tasks/${failing}/retry`, { method: 'POST' })
    expect(retried.status).toBe(200)
    expect((await finalStatus(gateway.url, failing)).status).toBe('done')
    const kinds = list((await admin(gateway.url, `/tasks/${failing}`)).data.timeline).map(
      (e) => e.kind,
    )
    expect(kinds).toEqual(expect.arrayContaining(['failed', 'retried', 'done']))
  })

  it('filters the history by owner, state and submit time, newest first, a page at a time', async () => {
    const dir = await tempDir('admin-api-history')
    let wall = Date.parse('2026-03-01T10:00:00Z')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN }, () => wall)
    const audio = await upload(gateway.url, media('h', 'audio'), '.wav')
    const video = await upload(gateway.url, media('h', 'video'), '.mp4')
    const ids: string[] = []
    for (const [i, owner] of ['a', 'b', 'a', 'a', 'b'].entries()) {
      wall = Date.parse('2026-03-01T10:00:00Z') + i * 86_400_000 // one a day
      ids.push(
        String((await submitTask(gateway.url, { audio, video, licenseKey: owner })).data.task_id),
      )
    }
    await admin(gateway.url, `/tasks/${ids[3] ?? ''}/cancel`, { method: 'POST' })
    const page = async (query: string): Promise<{ ids: unknown[]; next: unknown }> => {
      const reply = await admin(gateway.url, `/tasks?${query}`)
      expect(reply.status).toBe(200)
      return { ids: list(reply.data.tasks).map((t) => t.task_id), next: reply.data.next_before }
    }
    expect((await page('')).ids).toEqual([...ids].reverse())
    expect((await page('owner=a')).ids).toEqual([ids[3], ids[2], ids[0]])
    expect((await page('state=cancelled')).ids).toEqual([ids[3]])
    expect((await page('owner=b&state=queued')).ids).toEqual([ids[4], ids[1]])
    const from = Date.parse('2026-03-02T00:00:00Z')
    const to = Date.parse('2026-03-04T00:00:00Z')
    expect((await page(`from=${from}&to=${to}`)).ids).toEqual([ids[2], ids[1]])
    const first = await page('limit=2')
    expect(first.ids).toEqual([ids[4], ids[3]])
    const second = await page(`limit=2&before=${String(first.next)}`)
    expect(second.ids).toEqual([ids[2], ids[1]])
    const last = await page(`limit=2&before=${String(second.next)}`)
    expect(last).toEqual({ ids: [ids[0]], next: null })
    expect((await admin(gateway.url, '/tasks?state=nope')).status).toBe(400)
  })
})

describe('the history query', () => {
  it('reads through an index for every filter, in order without sorting, never a scan of the tasks table', async () => {
    const dir = await tempDir('admin-history-plan')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN })
    await submitFresh(gateway.url)
    await waitFor(() => gateway.store.all().length === 1)
    const db = new Database(join(dir, 'gateway', 'gateway.sqlite'), { readonly: true })
    const reads = new AdminReads(db)
    // Every combination of filters (the empty one reads the primary key backwards, LIMIT rows).
    const combos: HistoryFilterName[][] = [[]]
    for (const name of HISTORY_FILTERS) combos.push(...combos.map((c) => [...c, name]))
    for (const used of combos.filter((c) => c.length > 0)) {
      const sql = reads.historySql(used)
      const params = [...used.map((n) => (n === 'owner' || n === 'state' ? 'x' : 1)), 10]
      const plan = db
        .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...params)
        .map((row) => row.detail)
      expect(plan.join(' | '), used.join('+')).not.toMatch(/\bSCAN tasks\b/)
      // Newest first straight from the index (a date range sorts only the rows in its range).
      if (!used.includes('from') && !used.includes('to')) {
        expect(plan.join(' | '), used.join('+')).not.toMatch(/TEMP B-TREE/)
      }
    }
    db.close()
  })
})

describe('a GPU row of the dashboard', () => {
  it('carries the power state and the last power requests of its own GPU when a power source is wired', () => {
    const presence = {
      id: 'gpu-1',
      online: false,
      epoch: 3,
      since: 1,
      lastSeen: 1,
      capacity: 1,
      heartbeatMs: 15_000,
      ready: false,
      service: null,
      types: ['heygem'] as const,
      pullsOffers: false,
    }
    const request = (id: string, gpuId: string): PowerRequest => ({
      id,
      gpu_id: gpuId,
      action: 'start',
      reason: 'queued',
      channel: 'mqtt',
      outcome: 'ok',
      detail: null,
      at: 1,
      finished_at: 2,
      ready_at: null,
      boot_ms: null,
    })
    const requests = Array.from({ length: 8 }, (_, i) => request(`r${String(i)}`, 'gpu-1'))
    const gpu = (gpuId: string, state: 'online' | 'booting', since: number): GpuPowerView => ({
      gpu_id: gpuId,
      state,
      since,
      idle_since: null,
      last_request: null,
    })
    const row = gpuRow(presence, {
      running: [],
      doneToday: 0,
      power: {
        gpus: [gpu('gpu-2', 'online', 5), gpu('gpu-1', 'booting', 7)],
        requests: [request('r99', 'gpu-2'), ...requests],
      },
    })
    expect(row.power).toMatchObject({ gpu_id: 'gpu-1', state: 'booting' })
    expect(row.power_requests).toEqual(requests.slice(0, 5))
    expect(gpuRow(presence, { running: [], doneToday: 0, power: null }).power_requests).toBeNull()
  })
})
