/**
 * The abuse suite's raw MQTT packets: test/helpers/raw-mqtt.ts, with the defaults of an ordinary
 * client (clean session, a 60 s keep-alive) for the CONNECTs it sends.
 */
import { connectPacket as rawConnectPacket } from '../helpers/raw-mqtt.js'

export { HUGE_HEADER, connackCode, publishPacket, subscribePacket } from '../helpers/raw-mqtt.js'

export interface ConnectFields {
  readonly clientId: string
  readonly username?: string
  readonly password?: string
  readonly clean?: boolean
  readonly keepaliveS?: number
}

export function connectPacket(f: ConnectFields): Buffer {
  return rawConnectPacket({
    clientId: f.clientId,
    clean: f.clean ?? true,
    keepaliveS: f.keepaliveS ?? 60,
    ...(f.username === undefined ? {} : { username: f.username }),
    ...(f.password === undefined ? {} : { password: f.password }),
  })
}
