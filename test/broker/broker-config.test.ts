/** The broker's limits come from the environment, for the stand-alone and the embedded broker. */
import { describe, expect, it } from 'vitest'
import { DEFAULT_BROKER_LIMITS } from '../../broker/broker.js'
import { brokerConfigFromEnv } from '../../broker/config.js'
import { gatewayConfigFromEnv } from '../../gateway/config.js'

const LIMITS_ENV = {
  MQTT_MAX_CONNECTIONS_PER_IP: '16',
  MQTT_CONNECT_TIMEOUT_MS: '2500',
  MQTT_MAX_OUTGOING_BYTES: '524288',
}
const LIMITS = { maxConnectionsPerIp: 16, connectTimeoutMs: 2_500, maxOutgoingBytes: 524_288 }

describe('broker limits configuration', () => {
  it('defaults to 64 connections per address, a 5 s CONNECT deadline and 1 MiB outgoing', () => {
    expect(DEFAULT_BROKER_LIMITS).toEqual({
      maxConnectionsPerIp: 64,
      connectTimeoutMs: 5_000,
      maxOutgoingBytes: 1024 * 1024,
    })
    expect(brokerConfigFromEnv({}).limits).toEqual(DEFAULT_BROKER_LIMITS)
    expect(gatewayConfigFromEnv({}).broker.limits).toEqual(DEFAULT_BROKER_LIMITS)
  })

  it('reads MQTT_MAX_CONNECTIONS_PER_IP, MQTT_CONNECT_TIMEOUT_MS and MQTT_MAX_OUTGOING_BYTES for both brokers', () => {
    expect(brokerConfigFromEnv(LIMITS_ENV).limits).toEqual(LIMITS)
    expect(gatewayConfigFromEnv(LIMITS_ENV).broker.limits).toEqual(LIMITS)
  })

  it('refuses bad values at start, naming every bad key', () => {
    const bad = {
      MQTT_MAX_CONNECTIONS_PER_IP: '0',
      MQTT_CONNECT_TIMEOUT_MS: 'soon',
      MQTT_MAX_OUTGOING_BYTES: '10',
    }
    for (const parse of [brokerConfigFromEnv, gatewayConfigFromEnv]) {
      expect(() => parse(bad)).toThrow(
        /MQTT_MAX_CONNECTIONS_PER_IP[\s\S]*MQTT_CONNECT_TIMEOUT_MS[\s\S]*MQTT_MAX_OUTGOING_BYTES/,
      )
    }
  })
})
