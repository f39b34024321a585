/**
 * What run_server accepts and the relay must accept too (docs/design.md §7), sent among the bad
 * inputs (test/e2e/bad-input.test.ts): any hash string, an empty `license_key`, any extension,
 * keys it ignores; the download by `?token=` and with `Range`; assets and the legacy upload. Also
 * the wrong forms of those: a download with a bad token or range, asset and legacy-upload
 * mistakes. An accepted input may change the state, which must stay consistent.
 */
import type { HttpCase, Reply } from './bad-input.js'
import type { CaseContext } from './bad-input-cases.js'
import { media } from './pc.js'

export const ACCEPTED = { status: 200, code: null, accepted: true } as const

function dataOf(reply: Reply): Record<string, unknown> {
  const body = reply.body as { data?: unknown } | null
  return typeof body?.data === 'object' && body.data !== null
    ? (body.data as Record<string, unknown>)
    : {}
}

/** check_files answers each hash as sent, false when not there. */
function keyedAsSent(...hashes: string[]) {
  return (reply: Reply): string | null => {
    const data = dataOf(reply)
    const missing = hashes.filter((h) => data[h] !== false)
    return missing.length === 0 ? null : `not keyed as sent: ${missing.join(', ')}`
  }
}

export function bytesAre(expected: Buffer, status: number) {
  return (reply: Reply): string | null =>
    reply.status === status && reply.bytes?.equals(expected)
      ? null
      : `got ${String(reply.bytes?.length)} bytes, not the ${String(expected.length)} expected`
}

export function hasTask(reply: Reply): string | null {
  return typeof dataOf(reply).task_id === 'string' ? null : 'no task_id'
}

export function lenientCases(ctx: CaseContext): HttpCase[] {
  const { submit } = ctx
  const wav = (label: string) => media(label, 'audio')
  const mp4 = (label: string) => media(label, 'video')
  return [
    // check_files: any hash string, any extension, keyed as sent.
    {
      name: 'check_files: a tmp_ hash',
      path: '/api/heygem/check_files',
      json: { files: [{ hash: 'tmp_1700000000_ab', ext: '.wav' }] },
      ...ACCEPTED,
      expect: keyedAsSent('tmp_1700000000_ab'),
    },
    {
      name: 'check_files: a Chinese hash, an odd ext',
      path: '/api/heygem/check_files',
      json: { files: [{ hash: '头像视频', ext: '.视频' }] },
      ...ACCEPTED,
      expect: keyedAsSent('头像视频'),
    },
    {
      name: 'check_files: a hash named __proto__',
      path: '/api/heygem/check_files',
      json: { files: [{ hash: '__proto__' }, { hash: 'constructor' }] },
      ...ACCEPTED,
      expect: keyedAsSent('__proto__', 'constructor'),
    },
    {
      name: 'check_files: no files key',
      path: '/api/heygem/check_files',
      json: { sender_fd: 9 },
      ...ACCEPTED,
    },
    {
      name: 'check_files: an empty hash',
      path: '/api/heygem/check_files',
      json: { files: [{ hash: '', ext: '' }] },
      ...ACCEPTED,
    },
    // upload_file: any claimed hash, any extension.
    {
      name: 'upload_file: a tmp_ hash and .avi',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: 'tmp_1700000001_cd', ext: '.avi' },
        filename: 'clip.avi',
        bytes: mp4('len-avi'),
      },
      ...ACCEPTED,
    },
    {
      name: 'upload_file: a Chinese hash and .m4a',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: '录音', ext: '.m4a' },
        filename: '录音.m4a',
        bytes: wav('len-m4a'),
      },
      ...ACCEPTED,
    },
    {
      name: 'upload_file: no ext, a Chinese file name',
      path: '/api/heygem/upload_file',
      multipart: { fields: { hash: 'x' }, filename: '我的声音.wav', bytes: wav('len-name') },
      ...ACCEPTED,
    },
    // Submits: an empty license_key (no owner), any extension, keys run_server ignores.
    {
      name: 'GPU submit: license_key ""',
      path: '/api/heygem/submit',
      json: { ...submit, license_key: '' },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'GPU submit: .avi and .m4a, sender_fd',
      path: '/api/heygem/submit',
      json: { ...submit, audio_ext: '.m4a', video_ext: '.avi', sender_fd: 7 },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'GPU submit: empty exts (the defaults)',
      path: '/api/heygem/submit',
      json: { ...submit, audio_ext: '', video_ext: '' },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'GPU submit: the hashes in upper case',
      path: '/api/heygem/submit',
      json: {
        ...submit,
        audio_hash: submit.audio_hash.toUpperCase(),
        video_hash: submit.video_hash.toUpperCase(),
      },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'task submit: license_key ""',
      path: '/api/heygem/task/submit',
      json: { ...submit, license_key: '' },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'task submit: a 50 KB key run_server ignores',
      path: '/api/heygem/task/submit',
      json: { [`k${'e'.repeat(50_000)}`]: 1, ...submit },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'task submit: __proto__ in the body',
      path: '/api/heygem/task/submit',
      raw: {
        body: `{"__proto__":{"admin":true},${JSON.stringify(submit).slice(1)}`,
        type: 'application/json',
      },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'task submit: a Chinese license key',
      path: '/api/heygem/task/submit',
      json: { ...submit, license_key: '客户🙂' },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'GPU submit: JSON sent as text/plain',
      path: '/api/heygem/submit',
      raw: { body: JSON.stringify(submit), type: 'text/plain' },
      ...ACCEPTED,
      expect: hasTask,
    },
  ]
}
