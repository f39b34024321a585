import { describe, expect, test } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { fakeResultBytes } from './result-bytes.js'

describe('fakeResultBytes', () => {
  test('is a deterministic mp4-looking blob of the asked size, different for other inputs', () => {
    const a = md5Buffer('audio')
    const v = md5Buffer('video')
    const bytes = fakeResultBytes(a, v)
    expect(bytes.length).toBe(64 * 1024)
    expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp')
    expect(bytes.subarray(36, 40).toString('latin1')).toBe('mdat')
    expect(bytes.equals(fakeResultBytes(a, v))).toBe(true)
    expect(bytes.equals(fakeResultBytes(v, a))).toBe(false)
    expect(fakeResultBytes(a, v, 200_000).subarray(0, 32)).toEqual(bytes.subarray(0, 32))
    expect(fakeResultBytes(a, v, 10).length).toBe(10)
  })
})
