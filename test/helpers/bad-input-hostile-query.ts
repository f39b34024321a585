/**
 * Hostile queries, bridge parameters and credentials (test/e2e/bad-input.test.ts): duplicated
 * parameters, negative, non-finite and huge numbers, null bytes, unicode and broken escapes in
 * ids, huge keys and tokens. Each gets the envelope with a clear code; a harmless reading (a hex
 * offset, a long key that owns nothing) is answered.
 */
import type { HttpCase } from './bad-input.js'
import type { CaseContext } from './bad-input-cases.js'

const BAD = { status: 400, code: 'VALIDATION_FAILED' } as const
const NOT_FOUND_TASK = { status: 404, code: 'TASK_NOT_FOUND' } as const

export function hostileQueryCases(ctx: CaseContext): HttpCase[] {
  const { taskId, unknown } = ctx
  return [
    // Queries: duplicated, hostile, huge.
    {
      name: 'progress: two task ids',
      path: `/api/heygem/progress?task_id=${taskId}&task_id=${unknown}`,
      ...BAD,
    },
    { name: 'progress: task_id[] form', path: `/api/heygem/progress?task_id[]=${taskId}`, ...BAD },
    {
      name: 'progress: a null byte in the id',
      path: `/api/heygem/progress?task_id=${taskId}%00`,
      ...NOT_FOUND_TASK,
    },
    {
      name: 'progress: an id of 8,000 characters',
      path: `/api/heygem/progress?task_id=${'9'.repeat(8_000)}`,
      ...NOT_FOUND_TASK,
    },
    {
      name: 'progress: a Chinese id',
      path: `/api/heygem/progress?task_id=${encodeURIComponent('任务一')}`,
      ...NOT_FOUND_TASK,
    },
    {
      name: 'progress: a broken percent escape',
      path: '/api/heygem/progress?task_id=%E4%BB',
      ...NOT_FOUND_TASK,
    },
    {
      name: 'download: two task ids',
      path: `/api/heygem/download?task_id=${ctx.doneTaskId}&task_id=${taskId}`,
      ...BAD,
    },
    {
      name: 'download: an id with a path',
      path: '/api/heygem/download?task_id=..%2F..%2Fgateway.sqlite',
      ...NOT_FOUND_TASK,
    },
    {
      name: 'status: a null byte in the id',
      path: `/api/heygem/task/status?task_id=%00${taskId}`,
      ...BAD,
    },
    // Two keys are no key: the owner is not guessed.
    {
      name: 'history: two license keys',
      path: '/api/heygem/task/history?license_key=OWNER&license_key=OTHER',
      status: 400,
      code: 'LICENSE_REQUIRED',
    },
    {
      name: 'history: limit -1',
      path: '/api/heygem/task/history?license_key=OWNER&limit=-1',
      ...BAD,
    },
    {
      name: 'history: limit NaN',
      path: '/api/heygem/task/history?license_key=OWNER&limit=NaN',
      ...BAD,
    },
    {
      name: 'history: limit 1e309',
      path: '/api/heygem/task/history?license_key=OWNER&limit=1e309',
      ...BAD,
    },
    {
      name: 'history: limit past 2^64',
      path: '/api/heygem/task/history?license_key=OWNER&limit=99999999999999999999',
      ...BAD,
    },
    {
      name: 'history: two limits',
      path: '/api/heygem/task/history?license_key=OWNER&limit=1&limit=2',
      ...BAD,
    },
    {
      name: 'history: offset -5',
      path: '/api/heygem/task/history?license_key=OWNER&offset=-5',
      ...BAD,
    },
    // Read harmlessly: a hex offset, a long key that owns nothing.
    {
      name: 'history: offset 0x10',
      path: '/api/heygem/task/history?license_key=OWNER&offset=0x10',
      status: 200,
      code: null,
    },
    {
      name: 'history: a 10 KB license key',
      path: `/api/heygem/task/history?license_key=${'k'.repeat(10_000)}`,
      status: 200,
      code: null,
    },
    {
      name: 'asset list: two license keys',
      path: '/api/asset/list?license_key=OWNER&license_key=OTHER',
      status: 400,
      code: 'LICENSE_REQUIRED',
    },
    {
      name: 'asset list: a 10 KB license key',
      path: `/api/asset/list?license_key=${'k'.repeat(10_000)}`,
      ...BAD,
    },
    {
      name: 'asset list: two types',
      path: '/api/asset/list?license_key=OWNER&asset_type=voice&asset_type=avatar',
      ...BAD,
    },
    {
      name: 'relay file: a broken percent escape in the path',
      path: '/api/relay/files/abc%E4',
      headers: ctx.gpu1,
      ...BAD,
    },
    {
      name: 'result: a broken percent escape in the task id',
      path: '/api/relay/tasks/abc%E4%B8/result?attempt=1',
      headers: ctx.gpu1,
      raw: { body: 'x', type: 'application/octet-stream' },
      ...BAD,
    },
    {
      name: 'result: attempt -1',
      path: `/api/relay/tasks/${taskId}/result?attempt=-1`,
      headers: ctx.gpu1,
      raw: { body: 'x', type: 'application/octet-stream' },
      ...BAD,
    },
    {
      name: 'result: attempt NaN',
      path: `/api/relay/tasks/${taskId}/result?attempt=NaN`,
      headers: ctx.gpu1,
      raw: { body: 'x', type: 'application/octet-stream' },
      ...BAD,
    },
    {
      name: 'result: attempt 1e400',
      path: `/api/relay/tasks/${taskId}/result?attempt=1e400`,
      headers: ctx.gpu1,
      raw: { body: 'x', type: 'application/octet-stream' },
      ...BAD,
    },
    {
      name: 'result: two attempts',
      path: `/api/relay/tasks/${taskId}/result?attempt=1&attempt=2`,
      headers: ctx.gpu1,
      raw: { body: 'x', type: 'application/octet-stream' },
      ...BAD,
    },
    {
      name: 'result: ext with a path',
      path: `/api/relay/tasks/${taskId}/result?attempt=1&ext=..%2Fx`,
      headers: ctx.gpu1,
      raw: { body: 'x', type: 'application/octet-stream' },
      ...BAD,
    },
    // Credentials in hostile forms.
    {
      name: 'a bearer of 6,000 characters',
      path: '/api/heygem/queue',
      headers: { authorization: `Bearer ${'s'.repeat(6_000)}` },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'the secret with a suffix',
      path: '/api/heygem/queue',
      headers: { authorization: `Bearer ${ctx.apiSecret}%00` },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'a Basic credential',
      path: '/api/heygem/queue',
      headers: { authorization: `Basic ${Buffer.from(`x:${ctx.apiSecret}`).toString('base64')}` },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'the secret as ?token= on the queue',
      path: `/api/heygem/queue?token=${ctx.apiSecret}`,
      headers: {},
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'a GPU bearer with an empty id',
      path: '/api/relay/files/' + 'a'.repeat(32),
      headers: { authorization: 'Bearer gpu..x' },
      status: 401,
      code: 'UNAUTHORIZED',
    },
  ]
}
