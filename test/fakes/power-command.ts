/**
 * A fake POWER_ON_COMMAND / POWER_OFF_COMMAND: a shell command line that tells the test what it was
 * asked by appending one JSON line (`{action, gpuId, reason, requestId, pid}`) to a file the test
 * watches; the test then starts (or stops) the fake GPU and its bridge, as a cloud machine would come
 * up a while later. With `hang` it never exits (a command that hangs: the gateway's timeout must kill
 * it). Plain `sh` (no Node start-up): it signals within milliseconds even on a loaded machine, so a
 * short command timeout in a test is not spent before the command has spoken.
 */

/** The shell command line of this fake (for POWER_ON_COMMAND / POWER_OFF_COMMAND). */
export function fakePowerCommand(signalFile: string, mode: 'ok' | 'hang' | number = 'ok'): string {
  // The relay's variables are ids and words it chose itself (no quotes or backslashes).
  const line =
    `printf '{"action":"%s","gpuId":"%s","reason":"%s","requestId":"%s","pid":%d}\\n' ` +
    `"$RELAY_POWER_ACTION" "$RELAY_GPU_ID" "$RELAY_POWER_REASON" "$RELAY_POWER_REQUEST_ID" $$ ` +
    `>> ${quote(signalFile)}`
  const end = mode === 'hang' ? 'exec sleep 3600' : `exit ${mode === 'ok' ? '0' : String(mode)}`
  return `${line}; ${end}`
}

function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`
}
