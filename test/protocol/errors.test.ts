import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { appError } from '../../lib/errors.js'
import {
  ERRORS,
  ERROR_CODES,
  catalogMessage,
  errorCodeOf,
  errorText,
  fillTemplate,
  isErrorCode,
  templatesOf,
  type ErrorEntry,
} from '../../protocol/index.js'

const ROOT = join(import.meta.dirname, '..', '..')

/** Every .ts file under `dir` (relative to the repository), with its text. */
function sources(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = []
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...sources(path))
    else if (entry.name.endsWith('.ts'))
      out.push({ path, text: readFileSync(join(ROOT, path), 'utf8') })
  }
  return out
}

const entry = (code: string): ErrorEntry | undefined =>
  isErrorCode(code) ? ERRORS[code] : undefined

describe('the error catalog', () => {
  it('gives every code one entry, an HTTP error status and Chinese words, and is frozen', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length)
    for (const code of ERROR_CODES) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/)
      const e: ErrorEntry = ERRORS[code]
      expect(e.status, code).toBeGreaterThanOrEqual(400)
      expect(e.status, code).toBeLessThan(600)
      for (const text of templatesOf(code)) expect(text, code).toMatch(/\p{Script=Han}/u)
      // No two variants of a code (nor a variant and its text) say the same.
      expect(new Set(templatesOf(code)).size, code).toBe(templatesOf(code).length)
    }
    expect(Object.isFrozen(ERRORS)).toBe(true)
    expect(Object.isFrozen(ERRORS.TASK_NOT_FOUND)).toBe(true)
    expect(Object.isFrozen(ERRORS.TASK_NOT_FOUND.variants)).toBe(true)
  })

  it("holds run_server's own words for the GPU-server-compatible endpoints", () => {
    expect(ERRORS.UNAUTHORIZED).toMatchObject({ status: 401, text: '鉴权失败' })
    expect([
      ERRORS.VALIDATION_FAILED.status,
      ERRORS.VALIDATION_FAILED.variants.taskIdMissing,
    ]).toEqual([400, '缺少 task_id'])
    expect(errorText('TASK_NOT_FOUND', { variant: 'unknownId', params: { id: 'abc' } })).toBe(
      '任务 abc 不存在',
    )
    expect(
      errorText('FILE_NOT_FOUND', {
        variant: 'submitInput',
        params: { what: '音频', hash: 'h', ext: '.wav' },
      }),
    ).toBe('音频文件不存在: h.wav，请先上传')
    expect(errorText('TASK_NOT_DONE', { params: { status: 'queued' } })).toBe(
      '任务尚未完成 (当前状态: queued)',
    )
    expect(ERRORS.BAD_JSON.text).toBe('请求体必须是合法的JSON')
    expect(ERRORS.RESULT_GONE).toMatchObject({ status: 404, text: '结果文件不存在' })
  })

  it('builds AppErrors from an entry: its status, its words filled in, cause and details kept', () => {
    const cause = new Error('disk')
    const err = appError('FILE_NOT_FOUND', {
      params: { what: '视频', hash: 'abc' },
      details: { hash: 'abc' },
      cause,
    })
    expect([err.code, err.status, err.message]).toEqual([
      'FILE_NOT_FOUND',
      404,
      '视频文件 abc 不在服务器上，请先上传',
    ])
    expect(err.details).toEqual({ hash: 'abc' })
    expect(err.cause).toBe(cause)
    expect(appError('RATE_LIMITED', { params: { what: '提交', wait: 30 } }).message).toBe(
      '提交过于频繁，请 30 秒后再试',
    )
    expect(fillTemplate('任务 {id} 不存在', {})).toBe('任务 {id} 不存在')
  })

  it('has every code and variant the gateway answers with, and no error words outside it', () => {
    const files = sources('gateway')
    const used = new Set<string>()
    for (const { path, text } of files) {
      // Every AppError comes from the catalog (lib/errors.ts appError), never with words of its own.
      expect(text.includes('new AppError('), path).toBe(false)
      // No error body written by hand: `{ code: 404, msg: … }`.
      expect(/code:\s*[1-9]\d{2}\b/.test(text), path).toBe(false)
      for (const m of text.matchAll(
        /appError\(\s*'([A-Z0-9_]+)'(?:,\s*\{\s*variant:\s*'(\w+)')?/g,
      )) {
        const [, code = '', variant] = m
        used.add(code)
        const e = entry(code)
        expect(e, `${path}: ${code}`).toBeDefined()
        if (variant !== undefined)
          expect(e?.variants?.[variant], `${path}: ${code}.${variant}`).toBeDefined()
      }
      // Codes compared by name (`err.code === 'DISK_FULL'`, sets of codes) are catalog codes too.
      for (const m of text.matchAll(/code === '([A-Z0-9_]+)'/g)) {
        const code = m[1] ?? ''
        if (!/^(ENOSPC|EDQUOT|SQLITE_\w+)$/.test(code))
          expect(entry(code), `${path}: ${code}`).toBeDefined()
      }
    }
    // And the catalog holds nothing the gateway never says: every code made, every variant named.
    expect(ERROR_CODES.filter((code) => !used.has(code))).toEqual([])
    const all = files.map((f) => f.text).join('\n')
    const unnamed = ERROR_CODES.flatMap((code) =>
      Object.keys(entry(code)?.variants ?? {})
        .filter((variant) => !all.includes(`'${variant}'`))
        .map((variant) => `${code}.${variant}`),
    )
    expect(unnamed).toEqual([])
  })

  it('reads the code of an error reply, and words it from the catalog', () => {
    const body = { code: 404, msg: '任务 abc 不存在', data: { error: 'TASK_NOT_FOUND' } }
    expect(errorCodeOf(body)).toBe('TASK_NOT_FOUND')
    expect(errorCodeOf({ code: 401, msg: '鉴权失败' })).toBeNull()
    expect(errorCodeOf('<html>')).toBeNull()
    // The server's words when they are the code's own (any of its wordings, filled in) …
    expect(catalogMessage('TASK_NOT_FOUND', '任务 abc 不存在')).toBe('任务 abc 不存在')
    expect(catalogMessage('RATE_LIMITED', '上传过于频繁，请 12 秒后再试')).toBe(
      '上传过于频繁，请 12 秒后再试',
    )
    // … else the catalog's text, its parameters elided.
    expect(catalogMessage('TASK_NOT_FOUND', 'not found')).toBe('任务不存在，请检查任务编号')
    expect(catalogMessage('UNAUTHORIZED', null)).toBe('鉴权失败')
    expect(catalogMessage('RATE_LIMITED', '')).toBe('…过于频繁，请 … 秒后再试')
    // An unknown code: the server's words, or nothing.
    expect(catalogMessage('SOMETHING_NEW', '新的错误')).toBe('新的错误')
    expect(catalogMessage(null, '  ')).toBeNull()
  })

  it("matches the README's error table: every code with its status and words, and no other", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const start = readme.indexOf('<!-- error table')
    const end = readme.indexOf('<!-- end of error table -->')
    expect(start, 'the error table markers').toBeGreaterThan(-1)
    expect(end).toBeGreaterThan(start)
    const rows = readme
      .slice(start, end)
      .split('\n')
      .filter((line) => /^\| `[A-Z0-9_]+` \|/.test(line))
      .map((line) => line.split('|').map((cell) => cell.trim()))
    const table = new Map<string, { status: string; words: string[] }>()
    for (const [, codeCell = '', status = '', msg = ''] of rows) {
      const code = codeCell.replaceAll('`', '')
      expect(table.has(code), `${code} listed twice`).toBe(false)
      const words = msg.split('<br>').map((w) => w.replace(/^`|`$/g, ''))
      table.set(code, { status, words })
    }
    expect([...table.keys()].sort()).toEqual([...ERROR_CODES].sort())
    for (const code of ERROR_CODES) {
      expect(table.get(code), code).toEqual({
        status: String(ERRORS[code].status),
        words: templatesOf(code),
      })
    }
  })
})
