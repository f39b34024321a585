/**
 * Bad input over every endpoint and topic, against a gateway in its own process: each gets the
 * right status and code in the envelope (or is accepted where run_server accepts it), no process
 * crashes, and a refused input changes no task row, transition, pooled file, asset or file on
 * disk, while an accepted one leaves them consistent. The cases, in helpers/: bad-input-cases.ts
 * and -file-cases.ts (each endpoint's own mistakes), -hostile.ts and -hostile-query.ts (hostile
 * forms), -lenient.ts (run_server's leniencies), -transfers.ts (the download, assets, the legacy
 * upload), -wire.ts (raw multipart, HTTP and WebSocket), -mqtt.ts (a rogue bridge). Prints one line: `N bad inputs tried, 0 crashes, 0 state changes`.
 */
import { describe, expect, it } from 'vitest'
import { requestJson } from '../../lib/http-client.js'
import { Tally, inconsistencies, runHttpCases } from '../helpers/bad-input.js'
import { classicCases } from '../helpers/bad-input-cases.js'
import { fileCases } from '../helpers/bad-input-file-cases.js'
import { hostileCases } from '../helpers/bad-input-hostile.js'
import { hostileQueryCases } from '../helpers/bad-input-hostile-query.js'
import { lenientCases } from '../helpers/bad-input-lenient.js'
import { transferCases } from '../helpers/bad-input-transfers.js'
import { runMqttCases } from '../helpers/bad-input-mqtt.js'
import { rogueGpu2, startBadInputGateway } from '../helpers/bad-input-setup.js'
import { runWireCases } from '../helpers/bad-input-wire.js'

describe('bad input', () => {
  it('gets a clear answer everywhere, and crashes nothing and changes nothing', async () => {
    const { gw, dataDir, httpPort, ctx, gpu1, control } = await startBadInputGateway('bad-input')
    const base = gw.url
    const tally = new Tally()
    const cases = [
      ...classicCases(ctx),
      ...fileCases(ctx),
      ...hostileCases(ctx),
      ...hostileQueryCases(ctx),
      ...lenientCases(ctx),
      ...transferCases(ctx),
    ]
    await runHttpCases({ base, dataDir, cases, headers: ctx.pc, tally })
    await runWireCases({ port: httpPort, dataDir, ctx, tally })
    const { gpu2, control2 } = await rogueGpu2(gw.mqttUrl)
    await runMqttCases({ gpu1, control, gpu2, control2, dataDir, ctx, tally })

    const alive =
      (await requestJson(`${base}/api/heygem/health`)).status === 200 &&
      gw.child.process.exitCode === null
    const crashes = alive ? 0 : 1
    process.stdout.write(`${tally.line(crashes)}\n`)
    expect({ wrong: tally.wrong, changed: tally.changed }).toEqual({ wrong: [], changed: [] })
    expect(await inconsistencies(dataDir)).toEqual([])
    expect({ crashes, changes: tally.changed.length }).toEqual({ crashes: 0, changes: 0 })
    expect(tally.tried).toBeGreaterThanOrEqual(200)
  }, 120_000)
})
