/**
 * Who is who (docs/design.md §7, issue "only the right party in"): the names both ends must agree on.
 * MQTT: the gateway logs in as `gateway`, an admin as `admin`, a GPU as its gpuId with client id
 * `gpu-relay-bridge-{gpuId}`. HTTP: PCs send `Authorization: Bearer <api secret>` and name their
 * owner with `license_key`; a bridge sends `Authorization: Bearer gpu.{gpuId}.{secret}`.
 */
import { GpuId } from './common.js'

export const GATEWAY_USERNAME = 'gateway'
export const ADMIN_USERNAME = 'admin'
export const RESERVED_USERNAMES: readonly string[] = [GATEWAY_USERNAME, ADMIN_USERNAME]

/** The one client id a GPU credential may use (so no one else can take over its session). */
export function bridgeClientId(gpuId: string): string {
  return `gpu-relay-bridge-${gpuId}`
}

/** Header (or `license_key` query parameter) naming the owner on every request but submit. */
export const LICENSE_HEADER = 'x-license-key'

const GPU_BEARER = /^gpu\.([A-Za-z0-9_-]{1,64})\.(.+)$/

export function gpuBearer(gpuId: string, secret: string): string {
  return `gpu.${gpuId}.${secret}`
}

export function parseGpuBearer(token: string): { gpuId: string; secret: string } | null {
  const match = GPU_BEARER.exec(token)
  if (!match?.[1] || match[2] === undefined) return null
  return GpuId.safeParse(match[1]).success ? { gpuId: match[1], secret: match[2] } : null
}
