/**
 * Hostile forms of input over every JSON endpoint (test/e2e/bad-input.test.ts): huge keys and
 * values, huge, negative and non-finite numbers, unicode, null bytes, deep JSON, wrong types
 * (queries, bridge parameters and credentials: bad-input-hostile-query.ts). Each gets the envelope with a clear code; what
 * run_server accepts (any hash string, an empty `license_key`, a key it ignores) is accepted.
 */
import type { HttpCase } from './bad-input.js'
import type { CaseContext } from './bad-input-cases.js'

const BAD = { status: 400, code: 'VALIDATION_FAILED' } as const
const NOT_FOUND_FILE = { status: 404, code: 'FILE_NOT_FOUND' } as const
const BAD_JSON = { status: 400, code: 'BAD_JSON' } as const

/** `[[[…]]]` or `{"a":{"a":…}}`, `depth` levels, as raw JSON text. */
function deep(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
}

export function hostileCases(ctx: CaseContext): HttpCase[] {
  const { submit, taskId } = ctx
  const raw = (body: string) => ({ body, type: 'application/json' })
  const cases: HttpCase[] = []
  const bodyRoutes = [
    ['task submit', '/api/heygem/task/submit'],
    ['GPU-API submit', '/api/heygem/submit'],
    ['check_files', '/api/heygem/check_files'],
    ['cancel', '/api/heygem/task/cancel'],
    ['retry', '/api/heygem/task/retry'],
    ['asset delete', '/api/asset/delete'],
  ] as const
  // Bodies no endpoint takes: not JSON, not an object, or absurdly deep.
  for (const [what, path] of bodyRoutes) {
    cases.push(
      { name: `${what}: NaN in JSON`, path, raw: raw('{"task_id": NaN}'), ...BAD_JSON },
      { name: `${what}: Infinity in JSON`, path, raw: raw('{"id": Infinity}'), ...BAD_JSON },
      { name: `${what}: a body of a null byte`, path, raw: raw('\u0000'), ...BAD_JSON },
      { name: `${what}: deep arrays`, path, raw: raw(deep(5_000, 'array')), ...BAD },
      // Only an object or a list is JSON a route reads (express' strict JSON).
      { name: `${what}: a JSON string`, path, raw: raw('"files"'), ...BAD_JSON },
      { name: `${what}: a JSON number`, path, raw: raw('1e999'), ...BAD_JSON },
    )
  }
  cases.push(
    // task_id-taking bodies: wrong types and forms of the id.
    {
      name: 'cancel: task_id a number',
      path: '/api/heygem/task/cancel',
      json: { task_id: 1e308 },
      ...BAD,
    },
    {
      name: 'cancel: task_id an object',
      path: '/api/heygem/task/cancel',
      json: { task_id: { $ne: null } },
      ...BAD,
    },
    {
      name: 'cancel: task_id a list',
      path: '/api/heygem/task/cancel',
      json: { task_id: [taskId] },
      ...BAD,
    },
    {
      name: 'cancel: task_id with a null byte',
      path: '/api/heygem/task/cancel',
      json: { task_id: `${taskId}\u0000` },
      ...BAD,
    },
    {
      name: 'cancel: task_id of 100,000 characters',
      path: '/api/heygem/task/cancel',
      json: { task_id: 'f'.repeat(60_000) },
      ...BAD,
    },
    {
      name: 'retry: task_id in full-width digits',
      path: '/api/heygem/task/retry',
      json: { task_id: '１２３' },
      ...BAD,
    },
    {
      name: 'retry: deep object as task_id',
      path: '/api/heygem/task/retry',
      raw: raw(`{"task_id":${deep(2_000, 'object')}}`),
      ...BAD,
    },
    // Submits: every field with a hostile value.
    {
      name: 'submit: a 60 KB license key',
      path: '/api/heygem/task/submit',
      json: { ...submit, license_key: 'k'.repeat(60_000) },
      ...BAD,
    },
    {
      name: 'GPU submit: a 60 KB license key',
      path: '/api/heygem/submit',
      json: { ...submit, license_key: 'k'.repeat(60_000) },
      ...BAD,
    },
    {
      name: 'submit: a license key as a number',
      path: '/api/heygem/task/submit',
      json: { ...submit, license_key: 123 },
      ...BAD,
    },
    {
      name: 'submit: a license key as a list',
      path: '/api/heygem/task/submit',
      json: { ...submit, license_key: ['a', 'b'] },
      ...BAD,
    },
    {
      name: 'submit: hash a huge number',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_hash: 1e308 },
      ...BAD,
    },
    {
      name: 'submit: hash negative',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_hash: -1 },
      ...BAD,
    },
    {
      name: 'submit: hash null',
      path: '/api/heygem/task/submit',
      json: { ...submit, video_hash: null },
      ...BAD,
    },
    {
      name: 'submit: hash true',
      path: '/api/heygem/task/submit',
      json: { ...submit, video_hash: true },
      ...BAD,
    },
    {
      name: 'submit: hash a deep object',
      path: '/api/heygem/task/submit',
      raw: raw(`{"audio_hash":${deep(3_000, 'object')}}`),
      ...BAD,
    },
    {
      name: 'submit: hash in Chinese',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_hash: '音频哈希' },
      ...NOT_FOUND_FILE,
    },
    {
      name: 'submit: hash with a null byte',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_hash: `${'a'.repeat(31)}\u0000` },
      ...NOT_FOUND_FILE,
    },
    {
      name: 'submit: hash a lone surrogate',
      path: '/api/heygem/task/submit',
      raw: raw(JSON.stringify({ ...submit, video_hash: 'x' }).replace('"x"', '"\\ud800"')),
      ...NOT_FOUND_FILE,
    },
    {
      name: 'submit: hash a path',
      path: '/api/heygem/task/submit',
      json: { ...submit, video_hash: '../../gateway.sqlite' },
      ...NOT_FOUND_FILE,
    },
    {
      name: 'GPU submit: hash with a null byte',
      path: '/api/heygem/submit',
      json: { ...submit, video_hash: 'ab\u0000cd' },
      ...NOT_FOUND_FILE,
    },
    {
      name: 'GPU submit: hash an emoji',
      path: '/api/heygem/submit',
      json: { ...submit, audio_hash: '🎤🎤🎤' },
      ...NOT_FOUND_FILE,
    },
    {
      name: 'submit: ext in Chinese',
      path: '/api/heygem/task/submit',
      json: { ...submit, audio_ext: '.音频' },
      ...BAD,
    },
    {
      name: 'submit: ext with a null byte',
      path: '/api/heygem/task/submit',
      json: { ...submit, video_ext: '.mp4\u0000.sh' },
      ...BAD,
    },
    {
      name: 'GPU submit: ext a number',
      path: '/api/heygem/submit',
      json: { ...submit, audio_ext: 4 },
      ...BAD,
    },
    {
      name: 'GPU submit: ext of 1,000 characters',
      path: '/api/heygem/submit',
      json: { ...submit, video_ext: `.${'m'.repeat(1_000)}` },
      ...BAD,
    },
    {
      name: 'GPU submit: request_id empty',
      path: '/api/heygem/submit',
      json: { ...submit, request_id: '' },
      ...BAD,
    },
    {
      name: 'submit: request_id a number',
      path: '/api/heygem/task/submit',
      json: { ...submit, request_id: 7 },
      ...BAD,
    },
    // check_files: the list and its items.
    {
      name: 'check_files: files null',
      path: '/api/heygem/check_files',
      json: { files: null },
      ...BAD,
    },
    {
      name: 'check_files: a null item',
      path: '/api/heygem/check_files',
      json: { files: [null] },
      ...BAD,
    },
    {
      name: 'check_files: hash a number',
      path: '/api/heygem/check_files',
      json: { files: [{ hash: 12345, ext: '.wav' }] },
      ...BAD,
    },
    {
      name: 'check_files: ext a list',
      path: '/api/heygem/check_files',
      json: { files: [{ hash: 'a', ext: ['.wav'] }] },
      ...BAD,
    },
    {
      name: 'check_files: files an object with a length',
      path: '/api/heygem/check_files',
      json: { files: { length: 5 } },
      ...BAD,
    },
    {
      name: 'check_files: 10,000 items (over the body limit)',
      path: '/api/heygem/check_files',
      json: { files: Array.from({ length: 10_000 }, () => ({ hash: 'a' })) },
      status: 413,
      code: 'BODY_TOO_LARGE',
    },
    {
      name: 'check_files: 2,000 items',
      path: '/api/heygem/check_files',
      json: { files: Array.from({ length: 2_000 }, () => ({ hash: 'a' })) },
      ...BAD,
    },
    // Asset delete: ids that are no ids.
    {
      name: 'asset delete: id negative',
      path: '/api/asset/delete',
      json: { id: -1, license_key: 'OWNER' },
      ...BAD,
    },
    {
      name: 'asset delete: id 1e308',
      path: '/api/asset/delete',
      json: { id: 1e308, license_key: 'OWNER' },
      ...BAD,
    },
    {
      name: 'asset delete: id a fraction',
      path: '/api/asset/delete',
      json: { id: 1.5, license_key: 'OWNER' },
      ...BAD,
    },
    {
      name: 'asset delete: id "NaN"',
      path: '/api/asset/delete',
      json: { id: 'NaN', license_key: 'OWNER' },
      ...BAD,
    },
    {
      name: 'asset delete: id an object',
      path: '/api/asset/delete',
      json: { id: { a: 1 }, license_key: 'OWNER' },
      ...BAD,
    },
    {
      name: 'asset delete: a 60 KB license key',
      path: '/api/asset/delete',
      json: { id: 1, license_key: 'k'.repeat(60_000) },
      ...BAD,
    },
  )
  return cases
}
