/**
 * MQTT topic names (docs/design.md §5). Topic names are built only here; every other module asks this one.
 * The root is configurable (`MQTT_TOPIC_ROOT`), default `relay`.
 */
import { TASK_TYPE_PATTERN } from './common.js'

export const DEFAULT_TOPIC_ROOT = 'relay'

export type GpuChannel = 'state' | 'tasks' | 'control' | 'events'

export interface Topics {
  readonly root: string
  gpuState(gpuId: string): string
  gpuTasks(gpuId: string): string
  gpuControl(gpuId: string): string
  gpuEvents(gpuId: string): string
  /**
   * Task offers of one type (docs/design.md §5): every bridge that runs the type subscribes with
   * its persistent session, so a GPU that was off receives the backlog when it connects. Which
   * GPU runs a task is decided only by the claim.
   */
  offers(type: string): string
  /** `relay/offers/{type}` → the type, or null for any other topic. */
  parseOffersTopic(topic: string): string | null
  task(taskId: string): string
  readonly queue: string
  power(gpuId: string): string
  /** Subscription filter for one channel of every GPU, e.g. `relay/gpus/+/events`. */
  allGpus(channel: GpuChannel): string
  /** `relay/gpus/{gpuId}/{channel}` → its parts, or null for any other topic. */
  parseGpuTopic(topic: string): { gpuId: string; channel: GpuChannel } | null
}

const CHANNELS: readonly GpuChannel[] = ['state', 'tasks', 'control', 'events']

export function topicsFor(root: string = DEFAULT_TOPIC_ROOT): Topics {
  if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/.test(root)) {
    throw new Error(`invalid MQTT topic root "${root}"`)
  }
  const gpu = (gpuId: string, channel: GpuChannel): string => `${root}/gpus/${gpuId}/${channel}`
  const prefix = `${root}/gpus/`
  return Object.freeze({
    root,
    gpuState: (gpuId: string) => gpu(gpuId, 'state'),
    gpuTasks: (gpuId: string) => gpu(gpuId, 'tasks'),
    gpuControl: (gpuId: string) => gpu(gpuId, 'control'),
    gpuEvents: (gpuId: string) => gpu(gpuId, 'events'),
    offers: (type: string) => `${root}/offers/${type}`,
    parseOffersTopic(topic: string) {
      const offersPrefix = `${root}/offers/`
      if (!topic.startsWith(offersPrefix)) return null
      const type = topic.slice(offersPrefix.length)
      return TASK_TYPE_PATTERN.test(type) ? type : null
    },
    task: (taskId: string) => `${root}/tasks/${taskId}`,
    queue: `${root}/queue`,
    power: (gpuId: string) => `${root}/power/${gpuId}`,
    allGpus: (channel: GpuChannel) => `${root}/gpus/+/${channel}`,
    parseGpuTopic(topic: string) {
      if (!topic.startsWith(prefix)) return null
      const parts = topic.slice(prefix.length).split('/')
      const [gpuId, channel] = parts
      if (parts.length !== 2 || !gpuId || !channel) return null
      const known = CHANNELS.find((c) => c === channel)
      return known ? { gpuId, channel: known } : null
    },
  })
}
