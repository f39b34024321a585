/**
 * Who may connect, publish and subscribe (docs/design.md, "5. MQTT topics"). Roles:
 * - the gateway (`gateway`, its own client id): everything under the topic root;
 * - a GPU (`{gpuId}`, client id `gpu-relay-bridge-{gpuId}`): subscribe to its own tasks, control
 *   and state (to put its state back after a stale will), publish its own state and events;
 * - the admin (`admin`, for MQTT Explorer, clean sessions only): subscribe to `#`, the root and
 *   `$SYS`, receive only the root's topics and `$SYS` (broker/admin-view.ts), publish nothing;
 * - anonymous: refused, unless the development flag allows it (then unrestricted).
 * Client ids of the gateway and of bridges belong to those logins alone, so no one can take over
 * their persistent sessions. A will is checked at CONNECT, like a publish. Secrets are compared in
 * constant time and never logged; refusals are logged. Refused credentials back off per client
 * address (broker/login-backoff.ts): while an address waits, its CONNECTs get CONNACK 5 (not
 * authorized) at once, without their secret being looked at.
 */
import type { AedesOptions, AuthenticateError, Client, PublishPacket, Subscription } from 'aedes'
import type { Logger } from 'pino'
import { secretMatches, type Credentials } from '../lib/credentials.js'
import { adminView } from './admin-view.js'
import type { LoginBackoff } from './login-backoff.js'
import { ADMIN_USERNAME, GATEWAY_USERNAME, bridgeClientId, topicsFor } from '../protocol/index.js'

export interface BrokerAuthConfig {
  readonly credentials: Credentials
  /** Development only: connections without credentials get full access. */
  readonly allowAnonymous: boolean
  readonly topicRoot: string
  /** A PUBLISH larger than this is refused (and its connection closed). */
  readonly maxPayloadBytes: number
  /** The gateway's MQTT client id: reserved for the gateway login. */
  readonly gatewayClientId: string
}

type Role =
  | { readonly kind: 'gateway' }
  | { readonly kind: 'admin' }
  | { readonly kind: 'gpu'; readonly gpuId: string }
  | { readonly kind: 'anonymous' }

type Hooks = Required<
  Pick<
    AedesOptions,
    'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'
  >
>

const BRIDGE_PREFIX = bridgeClientId('')

/** CONNACK 4 (bad user name or password) or 5 (not authorized), MQTT 3.1.1 §3.2.2.3. */
function refused(code: 4 | 5, message: string): AuthenticateError {
  const err = new Error(message) as AuthenticateError
  // aedes types returnCode as a const enum that does not exist at run time; 4 and 5 are its values.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  err.returnCode = code
  return err
}

export interface BrokerAuthDeps {
  /** The client address a connection came from (broker/connection-gate.ts). */
  readonly addressOf: (client: Client) => string
  readonly backoff: LoginBackoff
}

const LOGGED_CHARS = 64

/**
 * Text off the wire as logged: at most 64 characters (a client id may be about 64 KB). Aedes'
 * types say a client's id is a string, but it is null until its CONNECT is handled (preConnect).
 */
export function clippedForLog(text: string | null | undefined): string | null {
  if (typeof text !== 'string') return null
  return text.length > LOGGED_CHARS ? `${text.slice(0, LOGGED_CHARS)}…` : text
}

export function brokerAuth(config: BrokerAuthConfig, log: Logger, deps: BrokerAuthDeps): Hooks {
  const { addressOf, backoff } = deps
  const roles = new WeakMap<Client, Role>()
  const topics = topicsFor(config.topicRoot)
  const root = `${config.topicRoot}/`
  const { credentials } = config
  const admin = adminView(config.topicRoot)

  /** A GPU's secret; own properties only (a user name like `__proto__` is just unknown). */
  const gpuSecret = (gpuId: string): string | null =>
    Object.hasOwn(credentials.gpus, gpuId) ? (credentials.gpus[gpuId] ?? null) : null

  /**
   * A stated user name as logged: only a known login name (gateway, admin, a configured GPU id)
   * is shown; any other may be a password typed in the wrong field, so only its length is.
   */
  const userFields = (
    username: string | undefined,
  ): { username: string | null } | { unknownUser: true; usernameLength: number } => {
    if (username === undefined) return { username: null }
    const known =
      username === GATEWAY_USERNAME ||
      username === ADMIN_USERNAME ||
      Object.hasOwn(credentials.gpus, username)
    return known ? { username } : { unknownUser: true, usernameLength: username.length }
  }

  const roleOf = (username: string | undefined, password: Buffer | undefined): Role | null => {
    if (username === undefined) return config.allowAnonymous ? { kind: 'anonymous' } : null
    if (username === GATEWAY_USERNAME) {
      return secretMatches(password, credentials.gateway) ? { kind: 'gateway' } : null
    }
    if (username === ADMIN_USERNAME) {
      return secretMatches(password, credentials.admin) ? { kind: 'admin' } : null
    }
    return secretMatches(password, gpuSecret(username)) ? { kind: 'gpu', gpuId: username } : null
  }

  /** The one login each reserved client id belongs to; null for any other id. */
  const ownerOfClientId = (clientId: string): Role | null => {
    if (clientId === config.gatewayClientId) return { kind: 'gateway' }
    if (clientId.startsWith(BRIDGE_PREFIX)) {
      return { kind: 'gpu', gpuId: clientId.slice(BRIDGE_PREFIX.length) }
    }
    return null
  }

  const mayPublish = (role: Role, topic: string): boolean => {
    switch (role.kind) {
      case 'anonymous':
        return true
      case 'gateway':
        return topic.startsWith(root)
      case 'admin':
        return false
      case 'gpu':
        return topic === topics.gpuState(role.gpuId) || topic === topics.gpuEvents(role.gpuId)
    }
  }

  const maySubscribe = (role: Role, filter: string): boolean => {
    switch (role.kind) {
      case 'anonymous':
        return true
      case 'gateway':
        return filter.startsWith(root)
      case 'admin':
        return admin.maySubscribe(filter)
      case 'gpu':
        // Its own channels, and the offers of any one task type (no wildcards).
        return (
          [
            topics.gpuTasks(role.gpuId),
            topics.gpuControl(role.gpuId),
            topics.gpuState(role.gpuId),
          ].includes(filter) || topics.parseOffersTopic(filter) !== null
        )
    }
  }

  return {
    // A will is a publish made later on the client's behalf: refuse a bad one before it is stored.
    // Bad credentials are left to authenticate (a refused, counted login), and so is an address in
    // backoff (refused there at once, its secret unread).
    preConnect(client, packet, done) {
      if (!packet.will || backoff.waitFor(addressOf(client)) > 0) {
        done(null, true)
        return
      }
      const role = roleOf(packet.username, packet.password)
      if (role && !mayPublish(role, packet.will.topic)) {
        log.warn(
          { clientId: clippedForLog(client.id), topic: clippedForLog(packet.will.topic) },
          'MQTT will refused',
        )
        done(new Error('will not authorized'), false)
        return
      }
      done(null, true)
    },

    // aedes' hook: its four parameters are aedes' signature.
    // eslint-disable-next-line @typescript-eslint/max-params
    authenticate(client, username, password, done) {
      const address = addressOf(client)
      const waitMs = backoff.waitFor(address)
      if (waitMs > 0) {
        // Debug only: an address in backoff could otherwise write a log line per CONNECT.
        log.debug(
          { clientId: clippedForLog(client.id), address, ...userFields(username), waitMs },
          'MQTT login refused: too many failed logins',
        )
        done(refused(5, 'too many failed logins'), false)
        return
      }
      const role = roleOf(username, password)
      if (!role) {
        // Only a stated credential counts (a CONNECT without one compares no secret).
        const backoffMs = username === undefined ? 0 : backoff.failed(address)
        log.warn(
          { clientId: clippedForLog(client.id), address, ...userFields(username), backoffMs },
          'MQTT login refused',
        )
        done(refused(username === undefined ? 5 : 4, 'bad user name or password'), false)
        return
      }
      // A success forgets no failure of this address (broker/login-backoff.ts).
      const owner = ownerOfClientId(client.id)
      const ownsId =
        owner === null ||
        role.kind === 'anonymous' ||
        (owner.kind === 'gateway' && role.kind === 'gateway') ||
        (owner.kind === 'gpu' && role.kind === 'gpu' && owner.gpuId === role.gpuId)
      const gpuOnOtherId = role.kind === 'gpu' && client.id !== bridgeClientId(role.gpuId)
      if (!ownsId || gpuOnOtherId) {
        log.warn(
          { clientId: clippedForLog(client.id), ...userFields(username) },
          'MQTT client id not allowed for this login',
        )
        done(refused(5, 'client id not allowed'), false)
        return
      }
      if (role.kind === 'admin' && !client.clean) {
        // A read-only viewer keeps no session: nothing should pile up for it while it is away.
        log.warn({ clientId: clippedForLog(client.id) }, 'MQTT admin refused: clean sessions only')
        done(refused(5, 'admin sessions must be clean'), false)
        return
      }
      roles.set(client, role)
      done(null, true)
    },

    authorizePublish(client, packet: PublishPacket & { clientId?: unknown }, done) {
      // Without a client: the broker's own messages ($SYS), or the will of a client that was
      // connected when a previous broker died (checked at its CONNECT; its login may be gone).
      const role = client ? roles.get(client) : null
      if (!client) {
        done(null)
        return
      }
      if (!role || !mayPublish(role, packet.topic)) {
        log.warn(
          { clientId: clippedForLog(client.id), topic: clippedForLog(packet.topic) },
          'MQTT publish refused',
        )
        done(new Error('publish not authorized'))
        return
      }
      if (packet.payload.length > config.maxPayloadBytes) {
        log.warn(
          {
            clientId: clippedForLog(client.id),
            topic: clippedForLog(packet.topic),
            bytes: packet.payload.length,
          },
          'MQTT payload too large',
        )
        done(new Error('payload too large'))
        return
      }
      done(null)
    },

    authorizeSubscribe(client, sub: Subscription, done) {
      const role = roles.get(client)
      if (!role || !maySubscribe(role, sub.topic)) {
        log.warn(
          { clientId: clippedForLog(client.id), filter: clippedForLog(sub.topic) },
          'MQTT subscribe refused',
        )
        done(null, null) // SUBACK 0x80 for this filter
        return
      }
      done(null, sub)
    },

    // Every delivery to a client, live or retained: the admin's `#` reaches only what it may see.
    authorizeForward(client, packet) {
      const role = roles.get(client)
      return role?.kind === 'admin' && !admin.mayReceive(packet.topic) ? null : packet
    },
  }
}
