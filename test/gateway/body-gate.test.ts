import { describe, expect, it } from 'vitest'
import { parseByteSize } from '../../gateway/body-gate.js'
import { gatewayConfigFromEnv } from '../../gateway/config.js'

describe('body sizes', () => {
  it('reads JSON_BODY_LIMIT as body-parser does (1024-based units), and refuses anything else at start', () => {
    expect(parseByteSize('1mb')).toBe(1024 * 1024)
    expect(parseByteSize('100KB')).toBe(100 * 1024)
    expect(parseByteSize('1.5kb')).toBe(1536)
    expect(parseByteSize('65536')).toBe(65536)
    expect(parseByteSize('2 gb')).toBe(2 * 1024 ** 3)
    for (const bad of ['', 'mb', '1tb', '-1mb', '1e6']) expect(parseByteSize(bad)).toBeNull()
    expect(() => gatewayConfigFromEnv({ JSON_BODY_LIMIT: 'lots' })).toThrow(/JSON_BODY_LIMIT/)
    expect(gatewayConfigFromEnv({}).jsonBodyLimit).toBe('1mb')
    expect(gatewayConfigFromEnv({ HTTP_MAX_CONNECTIONS_PER_IP: '5' }).maxConnectionsPerIp).toBe(5)
    expect(gatewayConfigFromEnv({}).maxConnectionsPerIp).toBe(64)
    expect(() => gatewayConfigFromEnv({ HTTP_MAX_CONNECTIONS_PER_IP: '0' })).toThrow(
      /HTTP_MAX_CONNECTIONS_PER_IP/,
    )
  })
})
