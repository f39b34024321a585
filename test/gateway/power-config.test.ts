import { describe, expect, it } from 'vitest'
import { gatewayConfigFromEnv } from '../../gateway/config.js'

describe('power on demand settings', () => {
  it('ask for nothing by themselves until a command or URL is set, with a 30-minute idle window', () => {
    const power = gatewayConfigFromEnv({}).power
    expect(power).toMatchObject({ auto: false, onCommand: null, onUrl: null, gpuIds: null })
    expect(power.idleMs).toBe(30 * 60_000)
    expect(power.bootDeadlineMs).toBe(600_000)
    expect(gatewayConfigFromEnv({ POWER_ON_COMMAND: 'true' }).power.auto).toBe(true)
    expect(gatewayConfigFromEnv({ POWER_OFF_URL: 'http://agent/off' }).power.auto).toBe(true)
    expect(gatewayConfigFromEnv({ POWER_CONTROL: 'on' }).power.auto).toBe(true)
    expect(
      gatewayConfigFromEnv({ POWER_CONTROL: 'off', POWER_ON_COMMAND: 'true' }).power.auto,
    ).toBe(false)
  })

  it('take POWER_IDLE_MS over POWER_IDLE_MINUTES, a GPU list, and refuse bad values by name', () => {
    const power = gatewayConfigFromEnv({
      POWER_IDLE_MINUTES: '5',
      POWER_IDLE_MS: '1500',
      POWER_GPU_IDS: 'gpu-2, gpu-3',
    }).power
    expect(power.idleMs).toBe(1_500)
    expect(power.gpuIds).toEqual(['gpu-2', 'gpu-3'])
    expect(gatewayConfigFromEnv({ POWER_IDLE_MINUTES: '5' }).power.idleMs).toBe(300_000)
    expect(() => gatewayConfigFromEnv({ POWER_ON_URL: 'ftp://x/y' })).toThrow(/POWER_ON_URL/)
    expect(() => gatewayConfigFromEnv({ POWER_GPU_IDS: 'a b' })).toThrow(/POWER_GPU_IDS/)
    expect(() => gatewayConfigFromEnv({ POWER_COMMAND_TIMEOUT_MS: '0' })).toThrow(
      /POWER_COMMAND_TIMEOUT_MS/,
    )
  })
})
