/** A gateway task database for unit tests: the lifecycle, its outbox and the read store. */
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { openDb, type Db } from '../../gateway/db.js'
import { TaskLifecycle, type NewTask, type ProgressUpdate } from '../../gateway/task-lifecycle.js'
import { TaskOutbox } from '../../gateway/task-outbox.js'
import { TaskStore } from '../../gateway/task-store.js'
import { tempDir } from '../helpers/temp-dir.js'

/** The clocks the tests set: wall (display columns) and relay (durations). */
export interface FakeClocks {
  wall: number
  relay: number
}

export interface TaskFixture {
  readonly db: Db
  readonly clocks: FakeClocks
  readonly outbox: TaskOutbox
  readonly lifecycle: TaskLifecycle
  readonly store: TaskStore
  /** Errors subscribers threw. */
  readonly listenerErrors: unknown[]
}

export async function taskFixture(
  clocks: FakeClocks = { wall: 1_000, relay: 1_000 },
): Promise<TaskFixture> {
  const db = openDb(join(await tempDir('tasks'), 'g.sqlite'))
  onTestFinished(() => {
    db.close()
  })
  const listenerErrors: unknown[] = []
  const outbox = new TaskOutbox(db, (err) => listenerErrors.push(err))
  const relay = (): number => clocks.relay
  const lifecycle = new TaskLifecycle({ db, outbox, now: () => clocks.wall, relay })
  const store = new TaskStore({ db, relay, typesOf: () => ['heygem'] })
  return { db, clocks, outbox, lifecycle, store, listenerErrors }
}

export const file = (hash: string) => ({ hash: hash.repeat(32), ext: '.wav', size: 10 })

export function newTask(id: string, fields: Partial<NewTask> = {}): NewTask {
  return {
    id,
    owner: 'K',
    source: 'task-api',
    type: 'heygem',
    audio: file('a'),
    video: file('b'),
    options: {},
    expiresAt: 11_000,
    requestKey: null,
    ...fields,
  }
}

/** One progress event of t1 on gpu-1, attempt 1, without frames. */
export function up(
  fields: Pick<ProgressUpdate, 'seq' | 'progress'> & Partial<ProgressUpdate>,
): ProgressUpdate {
  const base = { id: 't1', gpuId: 'gpu-1', attempt: 1, stage: 'synthesizing' as const }
  return { ...base, message: null, currentFrame: null, totalFrames: null, ...fields }
}
