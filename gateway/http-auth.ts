/**
 * Who is calling the HTTP API (docs/design.md §7, issue "only the right party in"):
 * - a PC: `Authorization: Bearer <API_SECRET>` (required when API_SECRET is set);
 * - an admin: `Bearer <ADMIN_TOKEN>`, sees every owner's tasks;
 * - a metrics scraper: `Bearer <METRICS_TOKEN>`, reads `/metrics` and nothing else;
 * - a GPU bridge: `Bearer gpu.{gpuId}.{secret}`, only for the file endpoints it needs.
 * `license_key` names the owner; a request carrying one sees only that owner's tasks, and another
 * owner's task answers 404 (so task ids cannot be probed). Without one, the task id (122 random
 * bits) is the capability, as the unchanged PC app expects. The health endpoint stays open.
 *
 * As run_server reads `Authorization`: the `Bearer ` prefix is optional (the bare secret works),
 * and with no API_SECRET a token that is neither an admin's nor a GPU's is no credential at all
 * (the H5 app sends its license key as the bearer): the caller is anonymous, and asset routes may
 * take that token as its license key (`bearerOf`). The download also takes the secret as
 * `?token=` (the H5 app's player cannot send headers); no other route does.
 *
 * Only headers are read here, before any body: refused credentials are answered 401 with the
 * connection closed (body-gate.ts). Refusals are counted per client address (login-backoff.ts):
 * an address in backoff has every credential refused at once with 429 and Retry-After. Logs name
 * the address, never any part of a credential.
 */
import type { Request, RequestHandler } from 'express'
import type { Logger } from 'pino'
import { callerAddresses, type CallerAddresses } from './caller-address.js'
import { KnownCredentials } from './known-credentials.js'
import type { LoginBackoff } from './login-backoff.js'
import { appError, type AppError } from '../lib/errors.js'
import { secretMatches, type Credentials } from '../lib/credentials.js'
import { HEYGEM_PATHS, LICENSE_HEADER, parseGpuBearer } from '../protocol/index.js'

export type Principal =
  | { readonly kind: 'pc' }
  | { readonly kind: 'admin' }
  | { readonly kind: 'metrics' }
  | { readonly kind: 'gpu'; readonly gpuId: string }
  | { readonly kind: 'anonymous' }

export interface HttpAuthConfig {
  readonly apiSecret: string | null
  readonly adminToken: string | null
  /** METRICS_TOKEN: opens `/metrics` only (routes/metrics.ts); absent or null: none. */
  readonly metricsToken?: string | null
  readonly credentials: Credentials
  /** Refused credentials per client address. */
  readonly logins: LoginBackoff
  /** Who is calling, by address (a trusted proxy's forwarded one); default: the socket's peer. */
  readonly callers?: CallerAddresses
}

export interface HttpAuth {
  /** Works out who is calling; a wrong token is a 401 at once. */
  readonly identify: RequestHandler
  /** The user API: PCs and admins (anyone, when no API_SECRET is set); never a GPU. */
  readonly users: RequestHandler
  /** The bridge file endpoints: GPUs and admins (anyone, when no GPU secret is configured). */
  readonly gpus: RequestHandler
  principal(req: Request): Principal
  /** The owner this request speaks for: `license_key` from the header or the query. */
  licenseOf(req: Request): string | null
  /** The caller's address: rate limits and failed logins are kept per it. */
  addressOf(req: Request): string
  /** The bearer token of an anonymous caller (no API_SECRET, not a known token); else null. */
  bearerOf(req: Request): string | null
  /** Throws the same 404 as an unknown task when this request may not see a task of `owner`. */
  assertVisible(req: Request, owner: string | null): void
}

const notFound = (): AppError => appError('TASK_NOT_FOUND')

export function httpAuth(config: HttpAuthConfig, log: Logger): HttpAuth {
  const callers = config.callers ?? callerAddresses([])
  const known = new KnownCredentials()
  const principals = new WeakMap<Request, Principal>()
  const bearers = new WeakMap<Request, string>()
  const principal = (req: Request): Principal => principals.get(req) ?? { kind: 'anonymous' }

  const identify: RequestHandler = (req, res, next) => {
    const token = credentialOf(req)
    if (token === null) {
      principals.set(req, { kind: 'anonymous' })
      next()
      return
    }
    // Without an API_SECRET only a GPU's form of token is surely a credential (any other may be
    // an H5 app's license key): only those count as logins.
    const login = config.apiSecret !== null || parseGpuBearer(token) !== null
    const ip = callers.of(req)
    const wait = login ? config.logins.retryAfterS(ip) : 0
    // A credential that held from this address before is served during its wait (known-credentials.ts).
    if (wait > 0 && !known.has(ip, token)) {
      log.debug(
        { path: req.path, ip, retryAfterS: wait },
        'HTTP credentials refused unread (backoff)',
      )
      res.set('Retry-After', String(wait))
      next(appError('TOO_MANY_FAILED_LOGINS', { params: { wait } }))
      return
    }
    const who = resolve(token)
    if (who) {
      // A success forgets nothing: whoever holds one credential (every PC has the API secret)
      // must not clear its address's count while guessing another. Failures expire by window.
      if (login) known.add(ip, token)
      principals.set(req, who)
      next()
      return
    }
    if (!login) {
      // run_server without a secret ignores Authorization; so does the gateway without one (a
      // mistyped ADMIN_TOKEN then acts as anonymous: logged, so it can be told apart).
      log.debug({ path: req.path, ip }, 'unknown bearer taken as anonymous (no API_SECRET)')
      principals.set(req, { kind: 'anonymous' })
      bearers.set(req, token)
      next()
      return
    }
    const { failures, retryAfterS } = config.logins.failed(ip)
    log.warn(
      { path: req.path, ip, credential: describe(token), failures, retryAfterS },
      'HTTP credentials refused',
    )
    next(appError('UNAUTHORIZED'))
  }

  /** What a refused token claimed to be, for the log: never any of its characters. */
  const describe = (token: string): string => {
    const gpu = parseGpuBearer(token)
    if (!gpu) return 'secret'
    // A configured GPU's id is a name, not a secret; anything else might be one.
    return Object.hasOwn(config.credentials.gpus, gpu.gpuId) ? `gpu ${gpu.gpuId}` : 'gpu (unknown)'
  }

  /** The token, without a `Bearer ` prefix; `?token=` only on the download. Null: none given. */
  const credentialOf = (req: Request): string | null => {
    const header = req.get('authorization')
    let raw = header
    if (raw === undefined && req.method === 'GET' && req.path === HEYGEM_PATHS.download) {
      const query: unknown = req.query.token
      raw = typeof query === 'string' ? query : undefined
    }
    if (raw === undefined) return null
    const token = raw.replace(/^Bearer\s+/i, '').trim()
    return token === '' ? null : token
  }

  const resolve = (token: string): Principal | null => {
    if (secretMatches(token, config.adminToken)) return { kind: 'admin' }
    if (secretMatches(token, config.metricsToken ?? null)) return { kind: 'metrics' }
    const gpu = parseGpuBearer(token)
    if (gpu) {
      const gpus = config.credentials.gpus
      const secret = Object.hasOwn(gpus, gpu.gpuId) ? (gpus[gpu.gpuId] ?? null) : null
      return secretMatches(gpu.secret, secret) ? { kind: 'gpu', gpuId: gpu.gpuId } : null
    }
    return secretMatches(token, config.apiSecret) ? { kind: 'pc' } : null
  }

  const users: RequestHandler = (req, _res, next) => {
    const who = principal(req)
    if (who.kind === 'gpu') {
      next(appError('FORBIDDEN'))
    } else if (who.kind === 'metrics') {
      next(appError('FORBIDDEN', { variant: 'metricsOnly' }))
    } else if (who.kind === 'anonymous' && config.apiSecret !== null) {
      next(appError('UNAUTHORIZED'))
    } else {
      next()
    }
  }

  const gpus: RequestHandler = (req, _res, next) => {
    const who = principal(req)
    const open = Object.keys(config.credentials.gpus).length === 0
    if (who.kind === 'gpu' || who.kind === 'admin' || (who.kind === 'anonymous' && open)) next()
    else next(appError('FORBIDDEN', { variant: 'gpuOnly' }))
  }

  const licenseOf = (req: Request): string | null => {
    const header = req.get(LICENSE_HEADER)
    if (header !== undefined && header !== '') return header
    const query: unknown = req.query.license_key
    return typeof query === 'string' && query !== '' ? query : null
  }

  return {
    identify,
    users,
    gpus,
    principal,
    licenseOf,
    addressOf: (req) => callers.of(req),
    bearerOf: (req) => bearers.get(req) ?? null,
    assertVisible(req, owner) {
      if (principal(req).kind === 'admin') return
      const license = licenseOf(req)
      if (license !== null && license !== owner) throw notFound()
    },
  }
}
