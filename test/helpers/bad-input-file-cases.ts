/**
 * The bad-input suite's file, asset, bridge and path cases (test/e2e/bad-input.test.ts): each
 * endpoint's own wrong inputs and credentials, with the status and code each must get. Nothing
 * here is accepted: none may change the gateway's state.
 */
import { md5Buffer } from '../../lib/hash.js'
import { gpuBearer } from '../../protocol/index.js'
import type { HttpCase } from './bad-input.js'
import type { CaseContext } from './bad-input-cases.js'
import { media } from './pc.js'

export function fileCases(ctx: CaseContext): HttpCase[] {
  const { taskId, unknown, audio } = ctx
  const GPU1 = ctx.gpu1
  const API_SECRET = ctx.apiSecret
  const GPU2_SECRET = ctx.gpu2Secret
  return [
    {
      name: 'check_files with an over-long hash',
      path: '/api/heygem/check_files',
      json: { files: [{ hash: 'z'.repeat(201), ext: '.wav' }] },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'check_files with files that are not a list',
      path: '/api/heygem/check_files',
      json: { files: 'a.wav' },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'check_files with too many files',
      path: '/api/heygem/check_files',
      json: { files: Array.from({ length: 101 }, () => ({ hash: 'a'.repeat(32), ext: '.wav' })) },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'upload that is not multipart',
      path: '/api/heygem/upload_file',
      raw: { body: 'hello', type: 'text/plain' },
      status: 400,
      code: 'BAD_UPLOAD',
    },
    {
      name: 'upload without a file',
      path: '/api/heygem/upload_file',
      raw: {
        body: '--b\r\nContent-Disposition: form-data; name="hash"\r\n\r\nx\r\n--b--\r\n',
        type: 'multipart/form-data; boundary=b',
      },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'upload without a hash',
      path: '/api/heygem/upload_file',
      multipart: { fields: { ext: '.wav' }, filename: 'a.wav', bytes: media('u1', 'audio') },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'upload with an over-long hash',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: 'h'.repeat(201), ext: '.wav' },
        filename: 'a.wav',
        bytes: media('u1b', 'audio'),
      },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'upload with a path in its name',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: 'tmp_1', ext: '.wav' },
        filename: '../../etc/passwd.wav',
        bytes: media('u2', 'audio'),
      },
      status: 400,
      code: 'BAD_FILENAME',
    },
    {
      name: 'upload with an ext that is no extension',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: 'tmp_1', ext: '.w a v' },
        filename: 'a.wav',
        bytes: media('u2b', 'audio'),
      },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'upload of an .exe (by its content)',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: 'tmp_2', ext: '.mp4' },
        filename: 'x.mp4',
        bytes: Buffer.concat([Buffer.from('MZ'), Buffer.alloc(8000, 0x90)]),
      },
      status: 400,
      code: 'NOT_MEDIA',
    },
    {
      name: 'upload of text named .wav',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: 'tmp_3', ext: '.wav' },
        filename: 'a.wav',
        bytes: Buffer.from('not a voice at all '.repeat(500)),
      },
      status: 400,
      code: 'NOT_MEDIA',
    },
    {
      name: 'upload of an empty file',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: 'tmp_4', ext: '.wav' },
        filename: 'a.wav',
        bytes: Buffer.alloc(0),
      },
      status: 400,
      code: 'EMPTY_FILE',
    },
    {
      name: 'legacy upload with only an audio',
      path: '/api/heygem/upload',
      form: { fields: {}, files: { audio: { bytes: media('l1', 'audio'), filename: 'a.wav' } } },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'legacy upload whose video is not media (the audio is not kept either)',
      path: '/api/heygem/upload',
      form: {
        fields: {},
        files: {
          audio: { bytes: media('l2', 'audio'), filename: 'a.wav' },
          video: {
            bytes: Buffer.from('<html>not a video</html>'.repeat(300)),
            filename: 'v.mp4',
          },
        },
      },
      status: 400,
      code: 'NOT_MEDIA',
    },
    {
      name: 'asset upload without a license key',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'voice' },
        files: { file: { bytes: media('as1', 'audio'), filename: 'v.wav' } },
      },
      status: 400,
      code: 'LICENSE_REQUIRED',
    },
    {
      name: 'asset upload of a bad type',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'music', license_key: 'OWNER' },
        files: { file: { bytes: media('as2', 'audio'), filename: 'v.wav' } },
      },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'asset upload without a file',
      path: '/api/asset/upload',
      form: { fields: { asset_type: 'voice', license_key: 'OWNER' }, files: {} },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'asset upload that is not media',
      path: '/api/asset/upload',
      form: {
        fields: { asset_type: 'avatar', license_key: 'OWNER' },
        files: { file: { bytes: Buffer.from('{"json":true}'.repeat(400)), filename: 'a.mp4' } },
      },
      status: 400,
      code: 'NOT_MEDIA',
    },
    {
      name: 'asset list without a license key',
      path: '/api/asset/list',
      status: 400,
      code: 'LICENSE_REQUIRED',
    },
    {
      name: 'asset delete without an id',
      path: '/api/asset/delete',
      json: { license_key: 'OWNER' },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'download with a wrong ?token=',
      path: `/api/heygem/download?task_id=${taskId}&token=wrong-token`,
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'the secret as ?token= on another route',
      path: `/api/heygem/progress?task_id=${taskId}&token=${API_SECRET}`,
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'upload over the size limit',
      path: '/api/heygem/upload_file',
      multipart: {
        fields: { hash: 'tmp_5', ext: '.wav' },
        filename: 'big.wav',
        bytes: Buffer.alloc(200_000, 1),
      },
      status: 413,
      code: 'FILE_TOO_LARGE',
    },
    {
      name: 'upload without the API secret',
      path: '/api/heygem/upload_file',
      headers: {},
      multipart: { fields: { ext: '.wav' }, filename: 'a.wav', bytes: media('u4', 'audio') },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'bridge file with a PC secret',
      path: `/api/relay/files/${md5Buffer(audio)}`,
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'bridge file with a bad hash',
      path: '/api/relay/files/..%2F..%2Fgateway.sqlite',
      headers: GPU1,
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'bridge file of another GPU',
      path: `/api/relay/files/${md5Buffer(audio)}`,
      headers: { authorization: `Bearer ${gpuBearer('gpu-2', GPU2_SECRET)}` },
      status: 404,
      code: 'FILE_NOT_FOUND',
    },
    {
      name: 'result for an unknown task',
      path: `/api/relay/tasks/${unknown}/result?attempt=1`,
      headers: GPU1,
      raw: { body: 'x', type: 'application/octet-stream' },
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'result with a bad attempt',
      path: `/api/relay/tasks/${taskId}/result?attempt=abc`,
      headers: GPU1,
      raw: { body: 'x', type: 'application/octet-stream' },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      // Queued, so no GPU's task yet (docs/design.md §3.2): as unknown to gpu-1 as another's.
      name: 'result for a task not running',
      path: `/api/relay/tasks/${taskId}/result?attempt=1`,
      headers: GPU1,
      raw: { body: 'x', type: 'application/octet-stream' },
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'result from another GPU',
      path: `/api/relay/tasks/${taskId}/result?attempt=1`,
      headers: { authorization: `Bearer ${gpuBearer('gpu-2', GPU2_SECRET)}` },
      raw: { body: 'x', type: 'application/octet-stream' },
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'an unknown route',
      path: '/api/heygem/../../secret',
      status: 404,
      code: 'ROUTE_NOT_FOUND',
    },
    {
      name: 'a path in other letter case, no secret',
      path: '/API/heygem/queue',
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'history in other letter case, no secret',
      path: '/Api/heygem/task/history?license_key=OWNER',
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'cancel in other letter case, no secret',
      path: '/API/heygem/task/cancel',
      headers: {},
      json: { task_id: taskId },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'a path in other letter case, with the secret',
      path: '/API/heygem/queue',
      status: 404,
      code: 'ROUTE_NOT_FOUND',
    },
    {
      name: 'bridge file in other letter case, no token',
      path: `/api/Relay/files/${md5Buffer(audio)}`,
      headers: {},
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'a GPU token naming __proto__',
      path: `/api/relay/files/${md5Buffer(audio)}`,
      headers: { authorization: 'Bearer gpu.__proto__.x' },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'a GPU token naming constructor',
      path: `/api/relay/files/${md5Buffer(audio)}`,
      headers: { authorization: 'Bearer gpu.constructor.x' },
      status: 401,
      code: 'UNAUTHORIZED',
    },
  ]
}
