import { describe, expect, it } from 'vitest'
import { sseMessages, type SseMessage } from '../../pc-adapter/sse-reader.js'
import { fit } from '../../pc-adapter/progress-bar.js'

function body(chunks: readonly string[]): ReadableStream<Uint8Array> {
  const bytes = chunks.map((c) => new TextEncoder().encode(c))
  return new ReadableStream({
    start(controller) {
      for (const b of bytes) controller.enqueue(b)
      controller.close()
    },
  })
}

async function all(chunks: readonly string[], maxLineChars?: number): Promise<SseMessage[]> {
  const out: SseMessage[] = []
  const opts = maxLineChars === undefined ? {} : { maxLineChars }
  for await (const m of sseMessages(body(chunks), opts)) out.push(m)
  return out
}

describe('the PC side’s event stream parser', () => {
  it('reads ids, names and data across chunk borders, CRLF split in two included', async () => {
    const messages = await all([
      'retry: 2000\n\n: keep-alive\n\nid: 7\nevent: sta',
      'tus\ndata: {"a":1}\r',
      '\n\r\ndata: one\ndata: two\n\n',
      'id: 9\ndata:x\n\n',
    ])
    expect(messages).toEqual([
      { id: '7', event: 'status', data: '{"a":1}' },
      { id: null, event: 'message', data: 'one\ntwo' },
      { id: '9', event: 'message', data: 'x' },
    ])
  })

  it('gives up on a line or a message longer than its bound', async () => {
    await expect(all(['data: ', 'x'.repeat(100)], 50)).rejects.toThrow(/too long/)
    await expect(all(['data: aaaa\n'.repeat(20)], 50)).rejects.toThrow(/too long/)
  })
})

describe('the progress line on a terminal', () => {
  it('is cut to the terminal’s width, wide characters counting two', () => {
    expect(fit('abc', 10)).toBe('abc')
    expect(fit('排队中排队中', 8)).toBe('排队中…')
    expect(fit('abcdefghij', 6)).toBe('abcd…')
    expect(fit('排队中', undefined)).toBe('排队中')
  })
})
