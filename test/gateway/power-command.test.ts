import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { runPowerCommand } from '../../gateway/power/power-command.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('the power command', () => {
  afterEach(() => {
    vi.unstubAllEnvs()
  })

  it("runs with the request in its environment and none of the relay's own secrets", async () => {
    const dir = await tempDir('power-command-env')
    const out = join(dir, 'env.txt')
    vi.stubEnv('API_SECRET', 'pc-secret-value')
    vi.stubEnv('ADMIN_TOKEN', 'admin-token-value-0123')
    vi.stubEnv('GPU_SECRETS', 'gpu-1:gpu-secret')
    vi.stubEnv('CLOUD_API_KEY', 'the-providers-key')
    const command =
      `printf '%s|%s|%s|%s|%s|%s' "\${API_SECRET-unset}" "\${ADMIN_TOKEN-unset}" ` +
      `"\${GPU_SECRETS-unset}" "$CLOUD_API_KEY" "$RELAY_GPU_ID" "$RELAY_POWER_ACTION" > '${out}'`
    const running = runPowerCommand({
      command,
      gpuId: 'gpu-1',
      action: 'start',
      reason: 'queued',
      requestId: 'r1',
      timeoutMs: 10_000,
    })
    expect(await running.done).toEqual({ kind: 'exit', code: 0 })
    // The operator's own variables (a provider's key) are passed on; the relay's are not.
    expect(await readFile(out, 'utf8')).toBe('unset|unset|unset|the-providers-key|gpu-1|start')
  })
})
