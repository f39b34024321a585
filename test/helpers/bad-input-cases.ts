/**
 * The bad-input suite's first cases (test/e2e/bad-input.test.ts): the task endpoints' own wrong
 * inputs and credentials, with the status and code each must get (the file, asset, bridge and
 * path cases: bad-input-file-cases.ts). Nothing here is accepted: none may change the state.
 */
import type { HttpCase } from './bad-input.js'

export interface CaseContext {
  readonly apiSecret: string
  /** The PC's credentials. */
  readonly pc: Record<string, string>
  readonly gpu1: Record<string, string>
  readonly gpu2Secret: string
  /** A valid submit of the uploaded inputs, owned by OWNER. */
  readonly submit: {
    readonly audio_hash: string
    readonly audio_ext: string
    readonly video_hash: string
    readonly video_ext: string
    readonly license_key: string
  }
  /** OWNER's queued task. */
  readonly taskId: string
  /** OWNER's done task (its result stored). */
  readonly doneTaskId: string
  /** Its result's bytes. */
  readonly result: Buffer
  /** A task id no task has. */
  readonly unknown: string
  readonly audio: Buffer
}

export function classicCases(ctx: CaseContext): HttpCase[] {
  const { submit, taskId, unknown } = ctx
  const PC = ctx.pc
  const GPU1 = ctx.gpu1
  return [
    {
      name: 'submit without fields',
      path: '/api/heygem/task/submit',
      json: {},
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'submit with a wrong type',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_hash: 123 },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'submit a hash that is not md5',
      path: '/api/heygem/task/submit',
      json: { ...submit, video_hash: 'abc' },
      status: 404,
      code: 'FILE_NOT_FOUND',
    },
    {
      name: 'submit empty hashes',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_hash: '' },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'submit an over-long hash',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_hash: 'a'.repeat(201) },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'submit an over-long license key',
      path: '/api/heygem/task/submit',
      json: { ...submit, license_key: 'k'.repeat(201) },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'submit an ext with a path',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_ext: '../../x' },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'submit files never uploaded',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_hash: 'f'.repeat(32) },
      status: 404,
      code: 'FILE_NOT_FOUND',
    },
    {
      name: 'submit a body over the limit',
      path: '/api/heygem/task/submit',
      json: { ...submit, padding: 'x'.repeat(100_000) },
      status: 413,
      code: 'BODY_TOO_LARGE',
    },
    {
      name: 'submit broken JSON',
      path: '/api/heygem/task/submit',
      raw: { body: '{"audio_hash":', type: 'application/json' },
      status: 400,
      code: 'BAD_JSON',
    },
    {
      name: 'submit without the API secret',
      path: '/api/heygem/task/submit',
      headers: {},
      json: submit,
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'submit with a wrong secret',
      path: '/api/heygem/task/submit',
      headers: { authorization: 'Bearer nope-nope-nope' },
      json: submit,
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'submit with a GPU credential',
      path: '/api/heygem/task/submit',
      headers: GPU1,
      json: submit,
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'submit an over-long Idempotency-Key',
      path: '/api/heygem/task/submit',
      headers: { ...PC, 'idempotency-key': 'k'.repeat(300) },
      json: submit,
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'GPU-API submit without fields',
      path: '/api/heygem/submit',
      json: { audio_hash: 1 },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'GPU-API submit with empty hashes',
      path: '/api/heygem/submit',
      json: { audio_hash: '', video_hash: '', sender_fd: 3 },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'GPU-API submit an ext with a path',
      path: '/api/heygem/submit',
      json: { ...submit, video_ext: '../x' },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'GPU-API submit a tmp_ hash never uploaded',
      path: '/api/heygem/submit',
      json: { ...submit, video_hash: 'tmp_1700000000_ab' },
      status: 404,
      code: 'FILE_NOT_FOUND',
    },
    {
      name: 'status of an unknown task',
      path: `/api/heygem/task/status?task_id=${unknown}`,
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'status with a malformed id',
      path: '/api/heygem/task/status?task_id=../../etc/passwd',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'status with two ids',
      path: `/api/heygem/task/status?task_id=${taskId}&task_id=${unknown}`,
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'status of another owner',
      path: `/api/heygem/task/status?task_id=${taskId}`,
      headers: { ...PC, 'x-license-key': 'SOMEONE-ELSE' },
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'events of an unknown task',
      path: `/api/heygem/task/events?task_id=${unknown}`,
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'events with a malformed id',
      path: '/api/heygem/task/events?task_id=../../etc/passwd',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'events of another owner',
      path: `/api/heygem/task/events?task_id=${taskId}`,
      headers: { ...PC, 'x-license-key': 'SOMEONE-ELSE' },
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'events with a malformed Last-Event-ID',
      path: `/api/heygem/task/events?task_id=${taskId}`,
      headers: { ...PC, 'last-event-id': '-1' },
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'progress without an id',
      path: '/api/heygem/progress',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'download of a queued task',
      path: `/api/heygem/download?task_id=${taskId}`,
      status: 400,
      code: 'TASK_NOT_DONE',
    },
    {
      name: 'download of an unknown task',
      path: `/api/heygem/download?task_id=${unknown}`,
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'retry of a queued task',
      path: '/api/heygem/task/retry',
      json: { task_id: taskId },
      status: 409,
      code: 'TASK_NOT_RETRYABLE',
    },
    {
      name: 'cancel of an unknown task',
      path: '/api/heygem/task/cancel',
      json: { task_id: unknown },
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: "cancel of another owner's task",
      path: '/api/heygem/task/cancel',
      headers: { ...PC, 'x-license-key': 'SOMEONE-ELSE' },
      json: { task_id: taskId },
      status: 404,
      code: 'TASK_NOT_FOUND',
    },
    {
      name: 'cancel without an id',
      path: '/api/heygem/task/cancel',
      json: {},
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'history without a license key',
      path: '/api/heygem/task/history',
      status: 400,
      code: 'LICENSE_REQUIRED',
    },
    {
      name: 'history with limit 0',
      path: '/api/heygem/task/history?license_key=OWNER&limit=0',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
  ]
}
