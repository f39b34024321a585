import { randomBytes, randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { call, finalStatus, submitFresh } from '../helpers/pc.js'
import { scrape, valueOf, type Sample } from '../helpers/prometheus.js'
import { TEST_SECRETS, startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const ADMIN = 'test-admin-token-0123'
const METRICS = 'test-metrics-token-0123'

const httpSeries = (samples: readonly Sample[]): Sample[] =>
  samples.filter((s) => s.name === 'relay_http_requests_total')

describe('GET /metrics', () => {
  it('shows a task that waited for the GPU and ran: states, queue, wait and run time, GPU, MQTT, HTTP routes', async () => {
    const dir = await tempDir('metrics')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN, metricsToken: METRICS })
    // Submitted while no GPU is on: it waits.
    const id = await submitFresh(gateway.url)
    const waiting = await scrape(gateway.url, METRICS)
    expect(waiting.status).toBe(200)
    expect(waiting.contentType).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(valueOf(waiting.samples, 'relay_tasks', { state: 'queued' })).toBe(1)
    expect(valueOf(waiting.samples, 'relay_tasks', { state: 'done' })).toBe(0)
    expect(valueOf(waiting.samples, 'relay_queue_length')).toBe(1)
    expect(valueOf(waiting.samples, 'relay_queue_oldest_age_seconds')).toBeGreaterThanOrEqual(0)
    expect(valueOf(waiting.samples, 'relay_gpu_online', { gpu_id: 'gpu-1' })).toBe(0)
    expect(valueOf(waiting.samples, 'relay_task_queue_wait_seconds_count')).toBe(0)

    const gpu = await startTestGpu(dir, 300)
    await startTestBridge(dir, { gateway, gpu })
    expect((await finalStatus(gateway.url, id)).status).toBe('done')

    const { samples } = await scrape(gateway.url, ADMIN)
    expect(valueOf(samples, 'relay_tasks', { state: 'queued' })).toBe(0)
    expect(valueOf(samples, 'relay_tasks', { state: 'done' })).toBe(1)
    expect(valueOf(samples, 'relay_queue_length')).toBe(0)
    expect(valueOf(samples, 'relay_queue_oldest_age_seconds')).toBe(0)
    // One wait (submit → claim) and one run (claim → done), both measured.
    expect(valueOf(samples, 'relay_task_queue_wait_seconds_count')).toBe(1)
    expect(valueOf(samples, 'relay_task_queue_wait_seconds_sum')).toBeGreaterThan(0)
    expect(valueOf(samples, 'relay_task_duration_seconds_count', { state: 'done' })).toBe(1)
    // The fake GPU takes 300 ms at least.
    const run = valueOf(samples, 'relay_task_duration_seconds_sum', { state: 'done' })
    expect(run).toBeGreaterThanOrEqual(0.3)
    expect(
      valueOf(samples, 'relay_task_duration_seconds_bucket', { state: 'done', le: '+Inf' }),
    ).toBe(1)
    expect(valueOf(samples, 'relay_gpu_online', { gpu_id: 'gpu-1' })).toBe(1)
    expect(valueOf(samples, 'relay_gpu_ready', { gpu_id: 'gpu-1' })).toBe(1)
    expect(valueOf(samples, 'relay_gpu_capacity', { gpu_id: 'gpu-1' })).toBe(1)
    // The gateway and the bridge, on the embedded broker.
    expect(valueOf(samples, 'relay_mqtt_clients_connected')).toBe(2)
    expect(valueOf(samples, 'relay_mqtt_link_up')).toBe(1)
    // Routes by their pattern: the bridge fetched two inputs by hash.
    const submits = { method: 'POST', route: '/api/heygem/task/submit', status: '200' }
    expect(valueOf(samples, 'relay_http_requests_total', submits)).toBe(1)
    expect(
      valueOf(samples, 'relay_http_requests_total', {
        method: 'GET',
        route: '/api/relay/files/:hash',
        status: '200',
      }),
    ).toBe(2)
    expect(valueOf(samples, 'relay_http_request_duration_seconds_count', submits)).toBe(1)
    // Scrapes are requests too: the first is counted (this one ends after it is rendered).
    expect(
      valueOf(samples, 'relay_http_requests_total', {
        method: 'GET',
        route: '/metrics',
        status: '200',
      }),
    ).toBe(1)
    // Power on demand: the GPU that ran is up (online, or idle once nothing is to do), one
    // state at 1 and the others at 0; no request and no webhook yet: counters with no series.
    const power = ['off', 'booting', 'online', 'idle', 'shutting-down'].map(
      (state) => valueOf(samples, 'relay_gpu_power_state', { gpu_id: 'gpu-1', state }) ?? 0,
    )
    expect(power.reduce((a, b) => a + b, 0)).toBe(1)
    expect((power[2] ?? 0) + (power[3] ?? 0)).toBe(1)
    expect(waiting.text).toContain('# TYPE relay_power_requests_total counter')
    expect(waiting.text).toContain('# TYPE relay_webhook_deliveries_total counter')
  })

  it('is refused without a token (401) and to a PC (403), in the envelope; the metrics token opens nothing else', async () => {
    const dir = await tempDir('metrics-auth')
    const gateway = await startTestGateway(dir, {
      adminToken: ADMIN,
      metricsToken: METRICS,
      apiSecret: 'pc-secret',
    })
    const anonymous = await scrape(gateway.url)
    expect(anonymous.status).toBe(401)
    expect(JSON.parse(anonymous.text)).toMatchObject({ code: 401, msg: '鉴权失败' })
    const pc = await scrape(gateway.url, 'pc-secret')
    expect(pc.status).toBe(403)
    expect(JSON.parse(pc.text)).toMatchObject({ code: 403 })
    const wrong = await scrape(gateway.url, 'not-the-metrics-token')
    expect(wrong.status).toBe(401)
    expect((await scrape(gateway.url, METRICS)).status).toBe(200)
    expect((await scrape(gateway.url, ADMIN)).status).toBe(200)

    // The metrics token is no user: the task API and the event stream refuse it.
    const headers = { authorization: `Bearer ${METRICS}` }
    const queue = await fetch(`${gateway.url}/api/heygem/queue`, { headers })
    expect(queue.status).toBe(403)
    expect(await queue.json()).toMatchObject({ code: 403, msg: '监控令牌只能用于读取 /metrics' })
    const events = await fetch(`${gateway.url}/api/relay/events`, { headers })
    expect(events.status).toBe(403)
    await events.body?.cancel()
    const status = await call(gateway.url, '/api/heygem/task/status?task_id=x')
    expect(status.status).toBe(401) // and without credentials, as before
  })

  it('labels requests to random paths "unmatched": a hostile client does not grow the series', async () => {
    const dir = await tempDir('metrics-paths')
    const gateway = await startTestGateway(dir, { metricsToken: METRICS })
    const before = httpSeries((await scrape(gateway.url, METRICS)).samples).length
    const sent: string[] = []
    for (let i = 0; i < 60; i++) {
      const word = randomBytes(6).toString('hex')
      sent.push(word)
      const paths = [`/${word}`, `/api/heygem/${word}`, `/api/relay/tasks/${word}/x`, `/${word}/..`]
      const path = paths[i % paths.length] ?? '/'
      const res = await fetch(`${gateway.url}${path}?${word}=1`, {
        method: i % 2 === 0 ? 'GET' : 'POST',
      })
      await res.body?.cancel()
    }
    // A parameter in a matched route stays the pattern, whatever its value (a GPU's request:
    // anyone else is refused before routing, and counted as unmatched).
    const gpuBearer = { authorization: `Bearer gpu.gpu-1.${TEST_SECRETS.gpu}` }
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${gateway.url}/api/relay/files/${randomUUID()}`, {
        headers: gpuBearer,
      })
      await res.body?.cancel()
    }
    const after = await waitFor(
      async () => {
        const { samples, text } = await scrape(gateway.url, METRICS)
        const series = httpSeries(samples)
        const total = series.reduce((n, s) => n + s.value, 0)
        return total >= 66 ? { series, text } : null
      },
      { what: 'every request counted' },
    )
    for (const word of sent) expect(after.text).not.toContain(word)
    const routes = new Set(after.series.map((s) => s.labels['route']))
    expect([...routes].sort()).toEqual(['/api/relay/files/:hash', '/metrics', 'unmatched'])
    // Method × status × route: a handful, not one per request.
    expect(after.series.length - before).toBeLessThanOrEqual(8)
  })
})
