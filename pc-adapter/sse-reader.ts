/**
 * A server-sent events parser over a fetch body (the WHATWG event-stream format): lines split on
 * CR, LF or CRLF; `data:` lines joined, `event:` and `id:` kept, comments (`:`) and `retry:`
 * skipped; a blank line dispatches. A line or message longer than `maxLineChars` is a broken stream (memory
 * stays bounded whatever the server sends).
 */

export interface SseMessage {
  /** The `id:` of this message; null when it set none (the resume point does not move). */
  readonly id: string | null
  /** `event:`; `message` when unnamed. */
  readonly event: string
  readonly data: string
}

const MAX_LINE_CHARS = 1024 * 1024

export async function* sseMessages(
  body: ReadableStream<Uint8Array>,
  opts: { readonly onChunk?: () => void; readonly maxLineChars?: number } = {},
): AsyncGenerator<SseMessage> {
  const maxLine = opts.maxLineChars ?? MAX_LINE_CHARS
  let pending = ''
  let data: string[] = []
  let dataChars = 0
  let event = ''
  let id: string | null = null
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    opts.onChunk?.()
    let text = pending + chunk
    // A CR at the end may be half of a CRLF: held back until the next chunk says.
    const held = text.endsWith('\r') ? '\r' : ''
    if (held !== '') text = text.slice(0, -1)
    const lines = text.split(/\r\n|\r|\n/)
    // The last piece has no line end yet.
    pending = (lines.pop() ?? '') + held
    if (pending.length > maxLine) throw new Error('event stream line too long')
    for (const line of lines) {
      if (line === '') {
        if (data.length > 0)
          yield { id, event: event === '' ? 'message' : event, data: data.join('\n') }
        data = []
        dataChars = 0
        event = ''
        id = null
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      let value = colon < 0 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'data') {
        data.push(value)
        dataChars += value.length
        if (dataChars > maxLine) throw new Error('event stream message too long')
      } else if (field === 'event') event = value
      else if (field === 'id' && !value.includes('\0')) id = value
    }
  }
}
