/**
 * Power on demand in tests: a gateway whose power commands are the fake (test/fakes/
 * power-command.ts), and the file it signals through, read as the lines so far.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { POWER_DEFAULTS, type GatewayConfig, type PowerSettings } from '../../gateway/config.js'
import type { GatewayHandle } from '../../gateway/gateway.js'
import { fakePowerCommand } from '../fakes/power-command.js'
import { startTestGateway } from './relay.js'
import { waitFor } from './wait-for.js'

export const PowerSignal = z.object({
  action: z.enum(['start', 'stop']),
  gpuId: z.string(),
  reason: z.string(),
  requestId: z.string(),
  pid: z.number(),
})
export type PowerSignal = z.infer<typeof PowerSignal>

export interface PowerSignals {
  readonly file: string
  /** Every line the fake command wrote so far. */
  read(): Promise<PowerSignal[]>
  /** Wait until `count` signals of `action` were written; resolves with them. */
  waitFor(action: 'start' | 'stop', count?: number): Promise<PowerSignal[]>
}

export function powerSignals(dir: string): PowerSignals {
  const file = join(dir, 'power-signals.jsonl')
  const read = async (): Promise<PowerSignal[]> => {
    const text = await readFile(file, 'utf8').catch(() => '')
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => PowerSignal.parse(JSON.parse(l)))
  }
  return {
    file,
    read,
    waitFor: (action, count = 1) =>
      waitFor(
        async () => {
          const seen = (await read()).filter((s) => s.action === action)
          return seen.length >= count ? seen : null
        },
        { what: `${String(count)} power ${action} signal(s)`, timeoutMs: 20_000 },
      ),
  }
}

/** A gateway that powers gpu-1 with the fake command (both actions) and decides by itself. */
export async function startPoweredGateway(
  dir: string,
  o: { signals: PowerSignals; power?: Partial<PowerSettings>; config?: Partial<GatewayConfig> },
): Promise<GatewayHandle> {
  const command = fakePowerCommand(o.signals.file)
  return startTestGateway(dir, {
    ...o.config,
    power: {
      ...POWER_DEFAULTS,
      auto: true,
      onCommand: command,
      offCommand: command,
      ...o.power,
    },
  })
}

/** One GPU's power state as the gateway's handle shows it. */
export function powerStateOf(gateway: GatewayHandle, gpuId = 'gpu-1'): string | undefined {
  return gateway.power.view().gpus.find((g) => g.gpu_id === gpuId)?.state
}
