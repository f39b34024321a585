/**
 * Who may connect, publish and subscribe (issue: only the right party in). Roles:
 * - the gateway (`gateway`): everything under the topic root;
 * - a GPU (`{gpuId}`, client id `gpu-relay-bridge-{gpuId}`): subscribe to its own tasks, control
 *   and state (to put its state back after a stale will), publish its own state and events;
 * - the admin (`admin`, for MQTT Explorer): subscribe to the root and `$SYS`, publish nothing;
 * - anonymous: refused, unless the development flag allows it (then unrestricted).
 * Secrets are compared in constant time and never logged; refusals are logged.
 */
import type { AedesOptions, AuthenticateError, Client, PublishPacket, Subscription } from 'aedes'
import type { Logger } from 'pino'
import { secretMatches, type Credentials } from '../lib/credentials.js'
import { ADMIN_USERNAME, GATEWAY_USERNAME, bridgeClientId, topicsFor } from '../protocol/index.js'

export interface BrokerAuthConfig {
  readonly credentials: Credentials
  /** Development only: connections without credentials get full access. */
  readonly allowAnonymous: boolean
  readonly topicRoot: string
  /** A PUBLISH larger than this is refused (and its connection closed). */
  readonly maxPayloadBytes: number
}

type Role =
  | { readonly kind: 'gateway' }
  | { readonly kind: 'admin' }
  | { readonly kind: 'gpu'; readonly gpuId: string }
  | { readonly kind: 'anonymous' }

type Hooks = Required<
  Pick<AedesOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'>
>

/** CONNACK 4 (bad user name or password) or 5 (not authorized), MQTT 3.1.1 §3.2.2.3. */
function refused(code: 4 | 5, message: string): AuthenticateError {
  const err = new Error(message) as AuthenticateError
  // aedes types returnCode as a const enum that does not exist at run time; 4 and 5 are its values.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  err.returnCode = code
  return err
}

export function brokerAuth(config: BrokerAuthConfig, log: Logger): Hooks {
  const roles = new WeakMap<Client, Role>()
  const topics = topicsFor(config.topicRoot)
  const root = `${config.topicRoot}/`
  const { credentials } = config

  const roleOf = (username: string | undefined, password: Buffer | undefined): Role | null => {
    if (username === undefined) return config.allowAnonymous ? { kind: 'anonymous' } : null
    if (username === GATEWAY_USERNAME) {
      return secretMatches(password, credentials.gateway) ? { kind: 'gateway' } : null
    }
    if (username === ADMIN_USERNAME) {
      return secretMatches(password, credentials.admin) ? { kind: 'admin' } : null
    }
    const secret = credentials.gpus[username]
    return secret !== undefined && secretMatches(password, secret)
      ? { kind: 'gpu', gpuId: username }
      : null
  }

  /** A will published after the broker restarted has no client: judge it by its client id. */
  const roleOfWill = (packet: PublishPacket & { clientId?: unknown }): Role | null => {
    if (typeof packet.clientId !== 'string') return null
    for (const gpuId of Object.keys(credentials.gpus)) {
      if (bridgeClientId(gpuId) === packet.clientId) return { kind: 'gpu', gpuId }
    }
    return config.allowAnonymous ? { kind: 'anonymous' } : null
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
        return (
          filter === `${config.topicRoot}/#` ||
          filter.startsWith(root) ||
          filter.startsWith('$SYS/')
        )
      case 'gpu':
        return [
          topics.gpuTasks(role.gpuId),
          topics.gpuControl(role.gpuId),
          topics.gpuState(role.gpuId),
        ].includes(filter)
    }
  }

  return {
    authenticate(client, username, password, done) {
      const role = roleOf(username, password)
      if (!role) {
        log.warn({ clientId: client.id, username: username ?? null }, 'MQTT login refused')
        done(refused(username === undefined ? 5 : 4, 'bad user name or password'), false)
        return
      }
      // A GPU credential only ever speaks as that GPU's bridge, and no one else may take over a
      // bridge's (persistent) session.
      const bridgeId = role.kind === 'gpu' ? bridgeClientId(role.gpuId) : null
      if (
        (bridgeId !== null && client.id !== bridgeId) ||
        (bridgeId === null &&
          client.id.startsWith('gpu-relay-bridge-') &&
          role.kind !== 'anonymous')
      ) {
        log.warn({ clientId: client.id, username }, 'MQTT client id not allowed for this login')
        done(refused(5, 'client id not allowed'), false)
        return
      }
      roles.set(client, role)
      done(null, true)
    },

    authorizePublish(client, packet, done) {
      const role = client ? roles.get(client) : roleOfWill(packet)
      if (
        client === null &&
        role === null &&
        typeof (packet as { clientId?: unknown }).clientId !== 'string'
      ) {
        done(null) // the broker's own messages ($SYS heartbeats)
        return
      }
      if (!role || !mayPublish(role, packet.topic)) {
        log.warn({ clientId: client?.id ?? null, topic: packet.topic }, 'MQTT publish refused')
        done(new Error('publish not authorized'))
        return
      }
      if (packet.payload.length > config.maxPayloadBytes) {
        log.warn(
          { clientId: client?.id ?? null, topic: packet.topic, bytes: packet.payload.length },
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
        log.warn({ clientId: client.id, filter: sub.topic }, 'MQTT subscribe refused')
        done(null, null) // SUBACK 0x80 for this filter
        return
      }
      done(null, sub)
    },
  }
}
