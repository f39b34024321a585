import { describe, expect, it } from 'vitest'
import { gpuPresence } from '../helpers/gateway-view.js'
import { mp3Bytes, wavOfSeconds } from '../helpers/media.js'
import { call, finalStatus, media, submitTask, upload } from '../helpers/pc.js'
import { TEST_SECRETS, startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import type { GatewayHandle } from '../../gateway/gateway.js'
import { gpuBearer } from '../../protocol/index.js'

const ADMIN_TOKEN = 'estimates-admin-token-0123456789'

/** Submit a task of these bytes as audio (its own extension) with `video`. */
async function submitAudio(
  gateway: GatewayHandle,
  o: { readonly bytes: Buffer; readonly ext: string; readonly video: string },
): Promise<{ id: string; eta: number }> {
  const audio = await upload(gateway.url, o.bytes, o.ext)
  const { env } = await call(gateway.url, '/api/heygem/task/submit', {
    audio_hash: audio,
    audio_ext: o.ext,
    video_hash: o.video,
    video_ext: '.mp4',
    license_key: 'PC-EST',
  })
  if (env.code !== 0) throw new Error(`submit failed: ${env.msg}`)
  return { id: String(env.data.task_id), eta: Number(env.data.eta_seconds) }
}

/** Run ms per audio ms of finished tasks, from their rows: what the gateway should have learned. */
function medianRate(
  gateway: GatewayHandle,
  runs: readonly { id: string; audioS: number }[],
): number {
  const rates = runs
    .map((r) => {
      const row = gateway.store.get(r.id)
      return ((row?.rc_finished_at ?? 0) - (row?.rc_claimed_at ?? 0)) / (r.audioS * 1000)
    })
    .sort((a, b) => a - b)
  return rates[Math.floor(rates.length / 2)] ?? 0
}

async function adminEstimates(url: string, token: string | null): Promise<Response> {
  return fetch(`${url}/api/relay/admin/estimates`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  })
}

describe('estimates from measurement', () => {
  it('estimate a queued task from past run times per second of audio, not the configured run time, and report how good the estimates were', async () => {
    const dir = await tempDir('estimates')
    const gateway = await startTestGateway(dir, {
      bootEstimateS: 120,
      runEstimateS: 900,
      adminToken: ADMIN_TOKEN,
    })
    const gpu = await startTestGpu(dir, 300)
    const bridge = await startTestBridge(dir, { gateway, gpu })
    await waitFor(async () => (await gpuPresence(gateway.url)).ready, { what: 'GPU ready' })
    const video = await upload(gateway.url, media('avatar', 'video'), '.mp4')

    // History: three tasks of known length (WAV headers), run one after another.
    const history: { id: string; audioS: number }[] = []
    for (const audioS of [0.5, 1, 2]) {
      const { id } = await submitAudio(gateway, {
        bytes: wavOfSeconds(audioS, `h${audioS}`),
        ext: '.wav',
        video,
      })
      expect((await finalStatus(gateway.url, id)).status).toBe('done')
      history.push({ id, audioS })
    }
    const rate = medianRate(gateway, history)
    expect(rate).toBeGreaterThan(0)

    await bridge.close()
    await waitFor(async () => !(await gpuPresence(gateway.url)).online, { what: 'GPU offline' })

    // Queued while the GPU is off: a 60 s WAV, a 30 s WAV, an MP3 of unknown length.
    const first = await submitAudio(gateway, { bytes: wavOfSeconds(60, 'q60'), ext: '.wav', video })
    const second = await submitAudio(gateway, {
      bytes: wavOfSeconds(30, 'q30'),
      ext: '.wav',
      video,
    })
    const third = await submitAudio(gateway, { bytes: mp3Bytes('q-mp3'), ext: '.mp3', video })
    // Nothing ahead of the first: the boot (no boot was watched, so the configured one).
    expect(first.eta).toBeGreaterThanOrEqual(119)
    expect(first.eta).toBeLessThanOrEqual(120)
    // Behind the 60 s one: the boot plus its run at the measured rate, not 120 + 900 s.
    expect(second.eta).not.toBe(120 + 900)
    expect(Math.abs(second.eta - (120 + rate * 60))).toBeLessThanOrEqual(1)
    expect(Math.abs(third.eta - (120 + rate * 90))).toBeLessThanOrEqual(1)
    // The status reads the same estimate (a moment later: at most a second or two less).
    const status = await call(gateway.url, `/api/heygem/task/status?task_id=${third.id}`)
    expect(Number(status.env.data.eta_seconds)).toBeLessThanOrEqual(third.eta)
    expect(String(status.env.data.msg)).toContain('（第3位）')

    // The GPU comes back and runs them; the estimates are compared with the actual starts.
    await startTestBridge(dir, { gateway, gpu })
    for (const task of [first, second, third]) {
      expect((await finalStatus(gateway.url, task.id)).status).toBe('done')
    }
    expect((await adminEstimates(gateway.url, null)).status).toBe(401)
    expect((await adminEstimates(gateway.url, gpuBearer('gpu-1', TEST_SECRETS.gpu))).status).toBe(
      403,
    )
    const reply = await adminEstimates(gateway.url, ADMIN_TOKEN)
    expect(reply.status).toBe(200)
    const body = (await reply.json()) as {
      data: {
        samples: number
        median_error_s: number | null
        recent: {
          task_id: string
          estimated_start_s: number
          actual_start_s: number
          error_s: number
        }[]
      }
    }
    expect(body.data.samples).toBe(6)
    expect(body.data.median_error_s).toEqual(expect.any(Number))
    // Newest start first: the three queued ones, with what they were told at submit.
    const recent = body.data.recent
    expect(recent.slice(0, 3).map((r) => r.task_id)).toEqual([third.id, second.id, first.id])
    expect(recent.slice(0, 3).map((r) => r.estimated_start_s)).toEqual([
      third.eta,
      second.eta,
      first.eta,
    ])
    for (const r of recent) {
      const row = gateway.store.get(r.task_id)
      const actualMs = (row?.rc_claimed_at ?? 0) - (row?.rc_created_at ?? 0)
      expect(Math.abs(r.actual_start_s - actualMs / 1000)).toBeLessThanOrEqual(0.1)
      expect(r.error_s).toBeCloseTo(r.actual_start_s - r.estimated_start_s, 5)
    }
  })

  it('learns the boot time from a GPU whose service loads, instead of the configured one', async () => {
    const dir = await tempDir('estimates-boot')
    const gateway = await startTestGateway(dir, { bootEstimateS: 900 })
    const gpu = await startTestGpu(dir, 200, { loadMs: 1_000 })
    const bridge = await startTestBridge(dir, { gateway, gpu })
    await waitFor(async () => (await gpuPresence(gateway.url)).online, { what: 'GPU online' })
    await waitFor(async () => (await gpuPresence(gateway.url)).ready, { what: 'GPU ready' })
    await bridge.close()
    await waitFor(async () => !(await gpuPresence(gateway.url)).online, { what: 'GPU offline' })
    const audio = await upload(gateway.url, media('boot', 'audio'), '.wav')
    const video = await upload(gateway.url, media('boot', 'video'), '.mp4')
    const { data } = await submitTask(gateway.url, { audio, video, licenseKey: 'PC-BOOT' })
    // A boot of about a second was watched: the estimate is the floor, not 15 minutes.
    expect(Number(data.eta_seconds)).toBe(30)
    expect(String(data.msg)).toContain('约 30 秒')
    // A moment later (the learned boot may be over by then): made again, still about a minute at most.
    const status = await call(
      gateway.url,
      `/api/heygem/task/status?task_id=${String(data.task_id)}`,
    )
    expect(Number(status.env.data.eta_seconds)).toBeGreaterThanOrEqual(30)
    expect(Number(status.env.data.eta_seconds)).toBeLessThanOrEqual(60)
  })

  it('while the GPU stays off past the boot estimate, makes it again and keeps counting down', async () => {
    const dir = await tempDir('estimates-overdue')
    let skewMs = 0
    const gateway = await startTestGateway(dir, { bootEstimateS: 120 }, () => Date.now() + skewMs)
    const audio = await upload(gateway.url, media('late', 'audio'), '.wav')
    const video = await upload(gateway.url, media('late', 'video'), '.mp4')
    const { data } = await submitTask(gateway.url, { audio, video, licenseKey: 'PC-LATE' })
    const eta = async (): Promise<number> => {
      const status = await call(
        gateway.url,
        `/api/heygem/task/status?task_id=${String(data.task_id)}`,
      )
      return Number(status.env.data.eta_seconds)
    }
    expect(Number(data.eta_seconds)).toBeGreaterThanOrEqual(119)
    skewMs = 100_000
    expect(await eta()).toBe(30) // the countdown's floor, just before the boot time is over
    skewMs = 130_000
    const remade = await eta()
    expect(remade).toBeGreaterThan(30) // overdue: estimated again
    skewMs = 160_000
    expect(await eta()).toBeLessThan(remade) // and counting down again
    skewMs = 3_600_000
    const late = await eta()
    skewMs = 3_610_000
    expect(await eta()).not.toBe(late) // an hour on, it still moves
  })
})
