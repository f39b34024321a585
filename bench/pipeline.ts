/**
 * Issue 11, the pipeline goals: submit → the GPU service receives its submit (submit-latency), a
 * queued backlog drained through one bridge (drain-1-bridge) and bridge start → first task at the
 * GPU service (first-claim). Real gateway and bridge, fake run_server behind a submit-noting proxy
 * (bench/pipeline-relay.ts); peer: BullMQ on a redis-server of its own (bench/pipeline-bullmq.ts).
 */
import type { Bench, Goal } from './goal.js'
import { fmt, percentile } from './stats.js'
import { startBenchRelay } from './pipeline-relay.js'
import { startBullPeer, type BullPeer } from './pipeline-bullmq.js'
import { finalStatus, media, submitTask, upload } from '../test/helpers/pc.js'
import { waitFor } from '../test/helpers/wait-for.js'

/** Upload a fresh audio (and reuse one video): the submit body of a new task. */
async function fresh(
  url: string,
  video: string,
  i: number,
): Promise<{ audio: string; video: string; licenseKey: string }> {
  const audio = await upload(url, media(`a-${String(i)}-${String(Math.random())}`, 'audio'), '.wav')
  return { audio, video, licenseKey: 'K' }
}

async function submitLatencies(count: number): Promise<number[]> {
  const relay = await startBenchRelay(1)
  try {
    await relay.startBridge()
    const video = await upload(relay.url, media('v', 'video'), '.mp4')
    const out: number[] = []
    for (let i = 0; i < count; i++) {
      const body = await fresh(relay.url, video, i)
      const before = relay.submits.length
      const t0 = performance.now()
      const env = await submitTask(relay.url, body)
      await waitFor(() => (relay.submits.length > before ? true : null), {
        what: 'submit at the GPU service',
        timeoutMs: 10_000,
        intervalMs: 1,
      })
      out.push((relay.submits[before] ?? Number.NaN) - t0)
      await finalStatus(relay.url, String(env.data.task_id))
    }
    return out
  } finally {
    await relay.close()
  }
}

/** `count` tasks queued with no bridge, then one bridge: first submit after start, tasks/s. */
async function drain(count: number): Promise<{ firstMs: number; perS: number }> {
  const relay = await startBenchRelay(1)
  try {
    const video = await upload(relay.url, media('v', 'video'), '.mp4')
    const ids: string[] = []
    for (let i = 0; i < count; i++) {
      ids.push(String((await submitTask(relay.url, await fresh(relay.url, video, i))).data.task_id))
    }
    const t0 = await relay.startBridge()
    await waitFor(() => (relay.submits.length >= count ? true : null), {
      what: 'all submits at the GPU service',
      timeoutMs: 600_000,
      intervalMs: 5,
    })
    for (const id of ids.slice(-1)) await finalStatus(relay.url, id, 60_000)
    const end = performance.now()
    return { firstMs: (relay.submits[0] ?? Number.NaN) - t0, perS: (count / (end - t0)) * 1000 }
  } finally {
    await relay.close()
  }
}

const MISSING = 'missing: redis-server (bench/setup.sh)'

export const bench: Bench = async ({ quick, log }) => {
  const seqCount = quick ? 50 : 300
  const backlog = quick ? 200 : 1000
  const peer: BullPeer | null = await startBullPeer()
  if (!peer) log('redis-server is not installed: the BullMQ peer is missing (run bench/setup.sh)')
  try {
    const lat = await submitLatencies(seqCount)
    const bullLat = peer ? await peer.latencies(seqCount) : null
    const p50 = percentile(lat, 0.5)
    const p99 = percentile(lat, 0.99)
    log(
      `submit → GPU service submit, ${String(seqCount)} sequential: p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms`,
    )
    const d = await drain(backlog)
    const bullDrain = peer ? await peer.drain(backlog, 1) : null
    log(
      `${String(backlog)} queued through 1 bridge: ${fmt(d.perS)} tasks/s, first ${fmt(d.firstMs)} ms`,
    )
    const goals: Goal[] = [
      {
        name: 'submit-latency',
        figure: `p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms`,
        peer: bullLat
          ? `BullMQ add → processor: p50 ${fmt(percentile(bullLat, 0.5))} ms, p99 ${fmt(percentile(bullLat, 0.99))} ms (ratio p50 ${fmt(p50 / percentile(bullLat, 0.5))}x)`
          : MISSING,
        target: 'p50 <= 10 ms, p99 <= 30 ms',
        ok: p50 <= 10 && p99 <= 30,
      },
      {
        name: 'drain-1-bridge',
        figure: `${fmt(d.perS)} tasks/s (${String(backlog)} queued)`,
        peer: bullDrain ? `BullMQ 1 worker: ${fmt(bullDrain)} jobs/s` : MISSING,
        target: '>= 100 tasks/s',
        ok: d.perS >= 100,
      },
      {
        name: 'first-claim',
        figure: `${fmt(d.firstMs)} ms (bridge start → first submit at the GPU service, ${String(backlog)} queued)`,
        peer: 'none',
        target: '<= 100 ms',
        ok: d.firstMs <= 100,
      },
    ]
    return goals
  } finally {
    await peer?.close()
  }
}
