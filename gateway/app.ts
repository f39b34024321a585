/**
 * The express application: JSON body limit, who is calling (http-auth.ts), the route groups,
 * and one envelope for every error.
 */
import express, { type Express, type RequestHandler } from 'express'
import { errorHandler, notFoundHandler } from './http-envelope.js'
import type { RouteDeps } from './routes/deps.js'
import { healthApi } from './routes/health.js'
import { heygemApi } from './routes/heygem-api.js'
import { relayApi } from './routes/relay-api.js'
import { taskApi } from './routes/task-api.js'
import { uploadApi } from './routes/upload.js'

export interface AppDeps extends RouteDeps {
  readonly jsonBodyLimit: string
}

export function createApp(deps: AppDeps): Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('query parser', 'simple')
  // Paths are matched exactly as written: /API/heygem/… is not /api/heygem/… (nor does it slip
  // past the guard below, which also compares in lower case).
  app.set('case sensitive routing', true)
  app.use(healthApi(deps.views)) // open: no credentials, before anything can refuse
  app.use(express.json({ limit: deps.jsonBodyLimit }))
  app.use(deps.auth.identify)
  const guard: RequestHandler = (req, res, next) => {
    const path = req.path.toLowerCase()
    if (path.startsWith('/api/relay/')) deps.auth.gpus(req, res, next)
    else if (path.startsWith('/api/')) deps.auth.users(req, res, next)
    else next()
  }
  app.use(guard)
  app.use(taskApi(deps))
  app.use(uploadApi(deps))
  app.use(heygemApi(deps))
  app.use(relayApi(deps))
  app.use(notFoundHandler())
  app.use(errorHandler(deps.log))
  return app
}
