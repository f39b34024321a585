/**
 * `/dashboard`: the admin page's static files (gateway/dashboard/: HTML, CSS, plain ES modules).
 * They hold no secret, so they are served without credentials; the page asks for the admin token
 * and sends it with every API call. The folder is found beside this module: gateway/dashboard/
 * under tsx and vitest, dist/gateway/dashboard/ after `npm run build` (which copies it there).
 */
import { fileURLToPath } from 'node:url'
import express, { Router } from 'express'

export const DASHBOARD_PATH = '/dashboard'

/** Where the page's files are, next to this module's folder. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url))

/** Only its own files, scripts and API: no inline script, nothing from another origin. */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ')

export function dashboardFiles(): Router {
  const router = Router({ caseSensitive: true })
  router.use(
    DASHBOARD_PATH,
    express.static(DASHBOARD_DIR, {
      index: 'index.html',
      // A new version of the page is picked up at once (the files are small).
      cacheControl: false,
      setHeaders(res) {
        res.set({
          'Cache-Control': 'no-cache',
          'Content-Security-Policy': CSP,
          'Referrer-Policy': 'no-referrer',
          'X-Content-Type-Options': 'nosniff',
        })
      },
    }),
  )
  return router
}
