/**
 * The download, assets and the legacy upload among the bad inputs (test/e2e/bad-input.test.ts):
 * the download by `?token=` and with `Range` (one past the end or backwards:
 * bad-input-range.test.ts), a voice uploaded, listed and deleted, both files at once; then the
 * wrong forms of each (a bad or doubled token, another owner, asset and legacy-upload mistakes).
 */
import type { HttpCase } from './bad-input.js'
import type { CaseContext } from './bad-input-cases.js'
import { ACCEPTED, bytesAre, hasTask } from './bad-input-lenient.js'
import { media } from './pc.js'

export function transferCases(ctx: CaseContext): HttpCase[] {
  const { result, doneTaskId } = ctx
  const download = `/api/heygem/download?task_id=${doneTaskId}`
  const range = (value: string) => ({ ...ctx.pc, range: value })
  const wav = (label: string) => media(label, 'audio')
  const mp4 = (label: string) => media(label, 'video')
  return [
    // The download: by ?token=, with Range, and the wrong forms of both.
    {
      name: 'download by ?token=',
      path: `${download}&token=${ctx.apiSecret}`,
      headers: {},
      status: 200,
      code: null,
      expect: bytesAre(result, 200),
    },
    {
      name: 'download, Range: bytes=0-9',
      path: download,
      headers: range('bytes=0-9'),
      status: 206,
      code: null,
      expect: bytesAre(result.subarray(0, 10), 206),
    },
    {
      name: 'download, Range: bytes=-5',
      path: download,
      headers: range('bytes=-5'),
      status: 206,
      code: null,
      expect: bytesAre(result.subarray(-5), 206),
    },
    {
      name: 'download, Range: bytes=100-',
      path: `${download}&token=${ctx.apiSecret}`,
      headers: { range: 'bytes=100-' },
      status: 206,
      code: null,
      expect: bytesAre(result.subarray(100), 206),
    },
    {
      name: 'download, Range: nonsense (ignored)',
      path: download,
      headers: range('bytes=abc'),
      status: 200,
      code: null,
      expect: bytesAre(result, 200),
    },
    // Ranges a server may ignore (RFC 9110 §14.2): the whole file.
    {
      name: 'download, two ranges',
      path: download,
      headers: range('bytes=0-1,4-5'),
      status: 200,
      code: null,
      expect: bytesAre(result, 200),
    },
    {
      name: 'download, ?token= empty',
      path: `${download}&token=`,
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'download, two tokens',
      path: `${download}&token=${ctx.apiSecret}&token=x`,
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'download, ?token= of 10 KB',
      path: `${download}&token=${'t'.repeat(10_000)}`,
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: "download of another owner's task",
      path: download,
      headers: { ...ctx.pc, 'x-license-key': 'SOMEONE-ELSE' },
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    // Assets: accepted forms, then wrong ones.
    {
      name: 'asset upload: a voice',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'voice', license_key: 'OWNER', name: '我的声音' },
        files: { file: { bytes: wav('asset-ok'), filename: 'v.wav' } },
      },
      ...ACCEPTED,
    },
    {
      name: 'asset list: an unknown type (nothing)',
      path: '/api/asset/list?license_key=OWNER&asset_type=music',
      status: 200,
      code: null,
    },
    {
      name: 'asset delete: an id nobody has',
      path: '/api/asset/delete',
      json: { id: 987_654, license_key: 'OWNER' },
      ...ACCEPTED,
    },
    {
      name: 'asset upload: a 60 KB license key',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'voice', license_key: 'k'.repeat(60_000) },
        files: { file: { bytes: wav('as-k'), filename: 'v.wav' } },
      },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'asset upload: a path as file name',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'avatar', license_key: 'OWNER' },
        files: { file: { bytes: mp4('as-p'), filename: '../../x.mp4' } },
      },
      status: 400,
      code: 'BAD_FILENAME',
    },
    {
      name: 'asset upload: an empty file',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'voice', license_key: 'OWNER' },
        files: { file: { bytes: Buffer.alloc(0), filename: 'v.wav' } },
      },
      status: 400,
      code: 'EMPTY_FILE',
    },
    {
      name: 'asset upload: over the size limit',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'voice', license_key: 'OWNER' },
        files: { file: { bytes: Buffer.alloc(200_000, 1), filename: 'v.wav' } },
      },
      status: 413,
      code: 'FILE_TOO_LARGE',
    },
    {
      name: 'asset upload: the file under another field',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'voice', license_key: 'OWNER' },
        files: { audio: { bytes: wav('as-f'), filename: 'v.wav' } },
      },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      // Refused credentials are answered before the body is read, and the connection closed:
      // sent with node's client, which reads that answer (fetch may report only the close).
      name: 'asset upload: without the API secret',
      path: '/api/asset/upload',
      headers: {},
      multipart: {
        fields: { asset_type: 'voice', license_key: 'OWNER' },
        filename: 'v.wav',
        bytes: wav('as-a'),
      },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'asset list: without the API secret',
      path: '/api/asset/list?license_key=OWNER',
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'asset delete: without a license key',
      path: '/api/asset/delete',
      json: { id: 1 },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    // The legacy upload: accepted whole, refused otherwise (keeping neither file).
    {
      name: 'legacy upload: audio and video',
      path: '/api/heygem/upload',
      form: {
        fields: { license_key: 'OWNER' },
        files: {
          audio: { bytes: wav('leg-ok'), filename: 'a.wav' },
          video: { bytes: mp4('leg-ok'), filename: 'v.mp4' },
        },
      },
      ...ACCEPTED,
      expect: hasTask,
    },
    {
      name: 'legacy upload: only a video',
      path: '/api/heygem/upload',
      form: { fields: {}, files: { video: { bytes: mp4('leg-v'), filename: 'v.mp4' } } },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'legacy upload: the audio over the size limit',
      path: '/api/heygem/upload',
      form: {
        fields: {},
        files: {
          audio: { bytes: Buffer.alloc(150_000, 2), filename: 'a.wav' },
          video: { bytes: mp4('leg-big'), filename: 'v.mp4' },
        },
      },
      status: 413,
      code: 'FILE_TOO_LARGE',
    },
    {
      name: 'legacy upload: a path in the video name',
      path: '/api/heygem/upload',
      form: {
        fields: {},
        files: {
          audio: { bytes: wav('leg-p'), filename: 'a.wav' },
          video: { bytes: mp4('leg-p'), filename: '..\\v.mp4' },
        },
      },
      status: 400,
      code: 'BAD_FILENAME',
    },
    {
      name: 'legacy upload: both empty',
      path: '/api/heygem/upload',
      form: {
        fields: {},
        files: {
          audio: { bytes: Buffer.alloc(0), filename: 'a.wav' },
          video: { bytes: Buffer.alloc(0), filename: 'v.mp4' },
        },
      },
      status: 400,
      code: 'EMPTY_FILE',
    },
    {
      name: 'legacy upload: a JSON body',
      path: '/api/heygem/upload',
      json: { audio: 'x', video: 'y' },
      status: 400,
      code: 'BAD_UPLOAD',
    },
    {
      name: 'legacy upload: without the API secret',
      path: '/api/heygem/upload',
      headers: {},
      multipart: { fields: {}, fileField: 'audio', filename: 'a.wav', bytes: wav('leg-a') },
      status: 401,
      code: 'UNAUTHORIZED',
    },
  ]
}
