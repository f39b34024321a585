#!/usr/bin/env node
/** `gpu-relay`: the process shell around runCli. Ctrl-C once stops waiting; twice exits at once. */
import { runCli } from './cli-commands.js'

const stop = new AbortController()
process.on('SIGINT', () => {
  if (stop.signal.aborted) process.exit(130)
  stop.abort()
})

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  signal: stop.signal,
  isTTY: process.stdout.isTTY,
  columns: process.stdout.columns,
})
