/**
 * The download's unsatisfiable `Range` (past the end of the result, or backwards). run_server
 * (Flask's send_file) answers 416 past the end; the gateway answers 416 in its envelope, with a
 * Chinese `msg`, never 500 INTERNAL (express' send reports it as an error with status 416).
 */
import { describe, expect, it } from 'vitest'
import { Tally, runHttpCases } from '../helpers/bad-input.js'
import { startBadInputGateway } from '../helpers/bad-input-setup.js'

describe('bad input: a byte range past the end', () => {
  it('is answered 416 in the envelope, not 500, and changes nothing', async () => {
    const { gw, dataDir, ctx } = await startBadInputGateway('bad-range')
    const tally = new Tally()
    const download = `/api/heygem/download?task_id=${ctx.doneTaskId}`
    await runHttpCases({
      base: gw.url,
      dataDir,
      headers: ctx.pc,
      tally,
      cases: [
        {
          name: 'download, Range past the end',
          path: download,
          headers: { ...ctx.pc, range: `bytes=${String(ctx.result.length + 10)}-` },
          status: 416,
          code: 'RANGE_NOT_SATISFIABLE',
        },
        {
          name: 'download by ?token=, Range starting at the size',
          path: `${download}&token=${ctx.apiSecret}`,
          headers: { range: `bytes=${String(ctx.result.length)}-` },
          status: 416,
          code: 'RANGE_NOT_SATISFIABLE',
        },
        {
          // Unsatisfiable for express' send (Flask ignores it and sends the whole file).
          name: 'download, Range: bytes=5-2 (backwards)',
          path: download,
          headers: { ...ctx.pc, range: 'bytes=5-2' },
          status: 416,
          code: 'RANGE_NOT_SATISFIABLE',
        },
      ],
    })
    process.stdout.write(`range: ${tally.line(gw.child.process.exitCode === null ? 0 : 1)}\n`)
    expect({ wrong: tally.wrong, changed: tally.changed }).toEqual({ wrong: [], changed: [] })
  }, 60_000)
})
