/**
 * The one catalog of the gateway's error replies (docs/design.md §7): every stable code a caller
 * may branch on (`data.error` in the envelope), its HTTP status (the envelope's `code` too) and
 * its words in Simplified Chinese (`msg`). The task API, the GPU-server-compatible endpoints, the
 * progress WebSocket, the PC command line and the README's table all read it from here.
 *
 * A text may name parameters as `{name}`; they are filled in when the error is made. `variants`
 * are the same condition in other words, where a route must say it differently: chiefly
 * run_server's own sentences (the GPU-server-compatible endpoints answer exactly as run_server
 * does, e.g. `任务 {id} 不存在`), and the same refusal on another kind of route.
 *
 * No I/O here: the gateway builds its AppError from an entry (lib/errors.ts).
 */

export interface ErrorEntry {
  readonly status: number
  /** The relay's words: the task API, and every route with no words of run_server's. */
  readonly text: string
  /** The same condition in other words, by name (run_server's where noted). */
  readonly variants?: Readonly<Record<string, string>>
}

const catalog = {
  // ---- the request itself ----
  VALIDATION_FAILED: {
    status: 400,
    text: '请求参数有误：{fields}',
    variants: {
      /** run_server: progress and download without `task_id`. */
      taskIdMissing: '缺少 task_id',
      /** run_server: a submit with an empty audio or video hash. */
      inputHashesEmpty: 'audio_hash 和 video_hash 不能为空',
      /** run_server: upload_file without its `file` field. */
      fileFieldMissing: '缺少 file 字段',
      /** run_server: upload_file without its `hash` field. */
      hashFieldMissing: '缺少 hash 字段',
      /** run_server: asset upload without a file. */
      assetFileMissing: '缺少 file',
      /** run_server: asset upload with an `asset_type` other than voice or avatar. */
      assetTypeInvalid: 'asset_type 必须为 voice 或 avatar',
      /** run_server: asset delete without `id` or `license_key`. */
      assetDeleteIncomplete: '缺少 id 或 license_key',
      /** The legacy upload without both of its files. */
      uploadFilesMissing: '请上传 audio 和 video 文件',
      /** A path parameter with a broken %-escape. */
      pathUndecodable: '请求路径中的参数无法解码',
    },
  },
  LICENSE_REQUIRED: {
    status: 400,
    text: '需要提供 license_key',
    variants: {
      /** run_server: the asset API without a license key. */
      missing: '缺少 license_key',
      history: '查询历史需要提供 license_key',
    },
  },
  BAD_JSON: { status: 400, text: '请求体必须是合法的JSON' },
  BODY_TOO_LARGE: { status: 413, text: '请求体过大' },
  ROUTE_NOT_FOUND: { status: 404, text: '接口不存在：{method} {path}' },

  // ---- uploads ----
  BAD_UPLOAD: {
    status: 400,
    text: '上传必须是 multipart/form-data，字段 {fields}',
    variants: { unreadable: '上传内容无法解析' },
  },
  BAD_FILENAME: { status: 400, text: '文件名不能包含路径（.. / \\）' },
  EMPTY_FILE: { status: 400, text: '上传的文件是空的，请重新选择音频或视频文件' },
  NOT_MEDIA: {
    status: 400,
    text: '上传的文件不是音频或视频（内容类型 {mime}），请选择音频或视频文件',
    variants: {
      unknownContent: '上传的文件不是音频或视频（无法识别的内容），请选择音频或视频文件',
    },
  },
  FILE_TOO_LARGE: { status: 413, text: '文件超过大小上限（{maxBytes} 字节）' },
  UPLOAD_ABORTED: {
    status: 400,
    text: '上传中断，请重新上传',
    variants: { result: '结果上传中断，请重新上传' },
  },
  UPLOAD_FAILED: { status: 500, text: '文件保存失败，请重试' },
  DISK_FULL: { status: 507, text: '服务器磁盘空间不足，暂时无法接收文件或任务，请稍后再试' },

  // ---- files and tasks ----
  FILE_NOT_FOUND: {
    status: 404,
    text: '{what}文件 {hash} 不在服务器上，请先上传',
    variants: {
      /** run_server: a submit naming a file it does not hold. */
      submitInput: '{what}文件不存在: {hash}{ext}，请先上传',
      /** A bridge asking for an input it may not have. */
      relayFile: '文件 {hash} 不存在',
    },
  },
  TASK_NOT_FOUND: {
    status: 404,
    text: '任务不存在，请检查任务编号',
    variants: {
      /** run_server: progress, download and the progress WebSocket for an unknown id. */
      unknownId: '任务 {id} 不存在',
      /** run_server's progress WebSocket: the task went away while followed. */
      purged: '任务已被清理',
      /** A bridge handing over a result for a task that is not its own. */
      relay: '任务不存在',
    },
  },
  TASK_NOT_DONE: { status: 400, text: '任务尚未完成 (当前状态: {status})' },
  RESULT_GONE: { status: 404, text: '结果文件不存在' },
  RANGE_NOT_SATISFIABLE: { status: 416, text: '请求的字节范围无效' },
  TASK_NOT_CANCELLABLE: { status: 409, text: '任务已{state}，无法取消' },
  TASK_NOT_RETRYABLE: { status: 409, text: '只有失败的任务可以重试（当前：{state}）' },
  GPU_NOT_FOUND: { status: 404, text: 'GPU {id} 不存在或不由网关控制电源' },
  IDEMPOTENCY_CONFLICT: { status: 409, text: '这个请求编号已用于另一组文件，请换一个编号' },
  /** A submit's `webhook_url` the gateway will not call (gateway/webhooks/url-guard.ts). */
  WEBHOOK_URL_REFUSED: {
    status: 400,
    text: '回调地址 webhook_url 无效：只能是不含用户名和密码的 http 或 https 地址',
    variants: {
      private: '回调地址 webhook_url 指向内网、本机或保留地址，不允许使用',
      self: '回调地址 webhook_url 指向网关自身，不允许使用',
      unresolvable: '回调地址 webhook_url 的域名无法解析',
    },
  },

  // ---- a bridge's result hand-over ----
  TASK_NOT_CURRENT: {
    status: 409,
    text: '任务当前状态为 {state}（第 {attempt} 次尝试），不接收此结果',
  },
  RESULT_ALREADY_STORED: { status: 409, text: '该任务本次尝试的结果已经收到，不再接收' },
  RESULT_TOO_LARGE: { status: 413, text: '结果文件超过大小上限（{maxBytes} 字节），网关不接收' },

  // ---- who may call, and how often ----
  UNAUTHORIZED: { status: 401, text: '鉴权失败' },
  FORBIDDEN: {
    status: 403,
    text: 'GPU 凭据只能用于文件传输接口',
    variants: {
      gpuOnly: '此接口仅供 GPU 网桥使用',
      adminOnly: '此接口仅供管理员使用，请使用管理员令牌',
      metricsOnly: '监控令牌只能用于读取 /metrics',
    },
  },
  TOO_MANY_FAILED_LOGINS: { status: 429, text: '鉴权失败次数过多，请 {wait} 秒后再试' },
  RATE_LIMITED: {
    status: 429,
    text: '{what}过于频繁，请 {wait} 秒后再试',
    variants: {
      /** Too many task event streams open from one caller at once. */
      streams: '同时打开的任务进度推送过多（最多 {max} 个），请 {wait} 秒后再试',
    },
  },

  INTERNAL: { status: 500, text: '服务器内部错误，请稍后重试' },
} as const satisfies Record<string, ErrorEntry>

type Catalog = typeof catalog
export type ErrorCode = keyof Catalog

function deepFreeze<T extends object>(value: T): T {
  for (const inner of Object.values(value)) {
    if (typeof inner === 'object' && inner !== null) deepFreeze(inner as object)
  }
  return Object.freeze(value)
}

/** The catalog itself, frozen. */
export const ERRORS: Readonly<Catalog> = deepFreeze(catalog)

/** Every code, in catalog order. */
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(ERRORS) as ErrorCode[])

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value)
}

// ---- wording: a text (or a variant) with its parameters filled in ----

/** The `{name}` parameters a text names. */
export type Placeholders<T extends string> = T extends `${string}{${infer K}}${infer Rest}`
  ? K | Placeholders<Rest>
  : never

export type ErrorParams<T extends string> = Readonly<Record<Placeholders<T>, string | number>>

type TextOf<C extends ErrorCode> = Catalog[C]['text']
type VariantsOf<C extends ErrorCode> = Catalog[C] extends { readonly variants: infer V } ? V : never
/** The variant names of a code (never when it has none). */
export type VariantOf<C extends ErrorCode> = [VariantsOf<C>] extends [never]
  ? never
  : keyof VariantsOf<C> & string
type VariantText<C extends ErrorCode, V extends VariantOf<C>> = VariantsOf<C>[V] extends string
  ? VariantsOf<C>[V]
  : never

type ParamsFor<T extends string> = [Placeholders<T>] extends [never]
  ? { readonly params?: undefined }
  : { readonly params: ErrorParams<T> }

/** Which words, and their parameters: the text, or one named variant. */
export type ErrorWording<C extends ErrorCode> =
  | ({ readonly variant?: undefined } & ParamsFor<TextOf<C>>)
  | { [V in VariantOf<C>]: { readonly variant: V } & ParamsFor<VariantText<C, V>> }[VariantOf<C>]

/** The wording argument: optional when the code's text needs no parameters. */
export type WordingArgs<C extends ErrorCode, Extra = unknown> = [Placeholders<TextOf<C>>] extends [
  never,
]
  ? [wording?: ErrorWording<C> & Extra]
  : [wording: ErrorWording<C> & Extra]

const PLACEHOLDER = /\{(\w+)\}/g

/** A template with its `{name}` parameters filled in (an unknown name is left as written). */
export function fillTemplate(
  template: string,
  params: Readonly<Record<string, string | number>> = {},
): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    const value = Object.hasOwn(params, name) ? params[name] : undefined
    return value === undefined ? whole : String(value)
  })
}

/** The template a wording uses: the code's text, or the named variant. */
export function templateOf(code: ErrorCode, variant?: string): string {
  const entry: ErrorEntry = ERRORS[code]
  if (variant === undefined) return entry.text
  const text = entry.variants?.[variant]
  if (text === undefined) throw new TypeError(`error ${code} has no variant ${variant}`)
  return text
}

interface AnyWording {
  readonly variant?: string | undefined
  readonly params?: Readonly<Record<string, string | number>> | undefined
}

/**
 * The Chinese words for `code`, filled in:
 * `errorText('TASK_NOT_FOUND', { variant: 'unknownId', params: { id } })`.
 */
export function errorText<C extends ErrorCode>(code: C, ...[wording]: WordingArgs<C>): string {
  const w: AnyWording = wording ?? {}
  return fillTemplate(templateOf(code, w.variant), w.params)
}

/** All the templates of a code: its text, then its variants. */
export function templatesOf(code: ErrorCode): readonly string[] {
  const entry: ErrorEntry = ERRORS[code]
  return [entry.text, ...Object.values(entry.variants ?? {})]
}

// ---- reading an error reply (the PC side, the dashboard) ----

/** The stable code of an error envelope (`data.error`), when it carries one. */
export function errorCodeOf(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null
  const data = (body as { data?: unknown }).data
  if (typeof data !== 'object' || data === null) return null
  const code = (data as { error?: unknown }).error
  return typeof code === 'string' && code !== '' ? code : null
}

function templatePattern(template: string): RegExp {
  const parts = template.split(PLACEHOLDER)
  // split with a capture group: even indexes are literal text, odd ones parameter names.
  const source = parts
    .map((part, i) => (i % 2 === 0 ? part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : '.+?'))
    .join('')
  return new RegExp(`^${source}$`, 's')
}

/**
 * What to show a person for an error reply with `code` and the server's `msg`: for a code in the
 * catalog, the server's words when they are one of that code's (filled in), else the catalog's
 * text (its parameters as `…`); for an unknown code, the server's words, else null.
 */
export function catalogMessage(code: string | null, msg: string | null): string | null {
  const said = msg?.trim() ?? ''
  if (code === null || !isErrorCode(code)) return said === '' ? null : said
  if (said !== '' && templatesOf(code).some((t) => templatePattern(t).test(said))) return said
  return ERRORS[code].text.replace(PLACEHOLDER, '…')
}

/** What to show for an HTTP failure that carries no envelope at all (a proxy's page, a 502). */
export function statusMessage(status: number): string {
  if (status === 401) return ERRORS.UNAUTHORIZED.text
  if (status === 404) return '服务器上没有这个接口，请检查服务器地址'
  if (status === 413) return ERRORS.BODY_TOO_LARGE.text
  if (status === 429) return '请求过于频繁，请稍后再试'
  if (status >= 500) return `服务器暂时无法处理请求（HTTP ${String(status)}），请稍后再试`
  return `请求被服务器拒绝（HTTP ${String(status)}）`
}
