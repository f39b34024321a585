import type { MqttClient } from 'mqtt'

/** Publish and resolve once the broker has the message (PUBACK for QoS 1). */
export function publish(
  client: MqttClient,
  topic: string,
  payload: Buffer | string,
  options: { qos: 0 | 1; retain?: boolean },
): Promise<void> {
  return new Promise((resolve, reject) => {
    client.publish(topic, payload, { qos: options.qos, retain: options.retain ?? false }, (err) => {
      if (err) reject(err)
      else resolve()
    })
  })
}

/**
 * End a client; `force` drops the socket without DISCONNECT (the broker then sends the will).
 * A graceful end waits for in-flight QoS 1 messages, which never complete while the broker is
 * away, so it is forced when not connected or after `graceMs`.
 */
export function endClient(client: MqttClient, force = false, graceMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.end(true, {}, () => resolve())
    }, graceMs)
    client.end(force || !client.connected, {}, () => {
      clearTimeout(timer)
      resolve()
    })
  })
}
