/** The express application: JSON body limit, the three route groups, the envelope for errors. */
import express, { type Express } from 'express'
import type { Logger } from 'pino'
import { errorHandler, notFoundHandler } from './http-envelope.js'
import type { FilePool } from './file-pool.js'
import type { TaskActions } from './task-actions.js'
import type { TaskService } from './task-service.js'
import type { TaskStore } from './task-store.js'
import { heygemApi } from './routes/heygem-api.js'
import { relayApi } from './routes/relay-api.js'
import { taskApi } from './routes/task-api.js'

export interface AppDeps {
  readonly views: TaskService
  readonly actions: TaskActions
  readonly store: TaskStore
  readonly pool: FilePool
  readonly log: Logger
  readonly now: () => number
  readonly jsonBodyLimit: string
  readonly uploadMaxBytes: number
}

export function createApp(deps: AppDeps): Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('query parser', 'simple')
  app.use(express.json({ limit: deps.jsonBodyLimit }))
  app.use(taskApi(deps.views, deps.actions))
  app.use(
    heygemApi({
      tasks: deps.views,
      actions: deps.actions,
      pool: deps.pool,
      now: deps.now,
      uploadMaxBytes: deps.uploadMaxBytes,
    }),
  )
  app.use(relayApi({ pool: deps.pool, store: deps.store, log: deps.log, now: deps.now }))
  app.use(notFoundHandler())
  app.use(errorHandler(deps.log))
  return app
}
