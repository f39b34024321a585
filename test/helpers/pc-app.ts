/**
 * The user's PC app, as a test helper: a faithful model of `run_heygem_online` (docs/real-services.md §2)
 * that drives a server exactly as the unchanged app does, and records what the app would show.
 * Call order: health loop → check_files (video, audio) → upload_file for each missing one → submit
 * (pc-app-submit.ts) → progress (WebSocket first, else polling; pc-app-progress.ts) → streamed
 * download (pc-app-download.ts). Every call applies `raise_for_status()` before it reads the body,
 * so a non-2xx reply reaches the user only as requests' `400 Client Error: Bad Request for url: …`
 * (pc-app-requests.ts). Errors are thrown as `PcAppError`s carrying the text the user would read.
 * Not modelled: the PHP hub's `/dsp` WebSocket (it only asks for the GPU's power state and the app
 * proceeds without it) and the detail card.
 */
import { downloadResult } from './pc-app-download.js'
import { GrError, progressByPolling, progressOverWs } from './pc-app-progress.js'
import { PcRun } from './pc-app-submit.js'

export { normalizeServerUrl } from './pc-app-submit.js'

export interface PcFile {
  /** The file's name as the user picked it: its extension is what the app sends. */
  readonly name: string
  readonly bytes: Buffer
}

export interface PcAppOptions {
  /** `HEYGEM_SERVER_URL`: `http://` and `:8383` are added when missing. */
  readonly serverUrl: string
  /** `HEYGEM_API_SECRET`: sent as `Authorization: Bearer …` and `?token=` when set. */
  readonly apiSecret?: string
  /** `license_key` from `BASE_DIR/.license`; no file → `""`. */
  readonly licenseKey?: string
  readonly video: PcFile
  readonly audio: PcFile
  /** The `websockets` package is installed (the app's installer includes it); default true. */
  readonly websockets?: boolean
  /** Health loop interval: 3 s in the app. */
  readonly healthIntervalMs?: number
  /** How long connection errors are waited out: 1,800 s in the app. */
  readonly healthTimeoutMs?: number
  /** Progress polling interval: 2 s in the app. */
  readonly pollIntervalMs?: number
  /** Progress gives up this long after the function started: 1,800 s in the app. */
  readonly maxWaitMs?: number
  /** Wall clock in ms (default `Date.now`). */
  readonly now?: () => number
  /** Each text the progress bar shows, as it is shown (to wait on). */
  readonly onDisplay?: (text: string) => void
  /** Each call, as it is made: `GET /api/heygem/health`, `WS /ws/progress/{id}`. */
  readonly onCall?: (call: string) => void
}

export type ProgressVia = 'ws' | 'poll'

export interface PcAppResult {
  readonly taskId: string
  /** The downloaded result. */
  readonly video: Buffer
  /** Every text the progress bar showed, in order. */
  readonly displayed: string[]
  readonly via: ProgressVia
  /** Every call made, in order, without query strings. */
  readonly calls: string[]
}

/** What the user is left with when the app stops: its error text and what it had shown. */
export class PcAppError extends Error {
  /** False when the app would crash on a Python exception instead of showing a `gr.Error`. */
  readonly shown: boolean
  readonly displayed: readonly string[]
  readonly calls: readonly string[]
  readonly via: ProgressVia | null

  constructor(
    message: string,
    state: { shown: boolean; displayed: string[]; calls: string[]; via: ProgressVia | null },
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'PcAppError'
    this.shown = state.shown
    this.displayed = state.displayed
    this.calls = state.calls
    this.via = state.via
  }
}

/** Run the PC app's online synthesis against `serverUrl`. */
export async function runHeygemOnline(options: PcAppOptions): Promise<PcAppResult> {
  const displayed: string[] = []
  const calls: string[] = []
  let via: ProgressVia | null = null
  try {
    const run = new PcRun(options, displayed, calls)
    const { taskId, session } = await run.upToSubmit()
    session.display('等待服务器处理...')
    via = options.websockets === false ? 'poll' : 'ws'
    if (via === 'ws' && !(await progressOverWs(session))) via = 'poll'
    if (via === 'poll') await progressByPolling(session)
    const video = await downloadResult(session)
    session.display('✅ 完成')
    return { taskId, video, displayed, via, calls }
  } catch (err) {
    const shown = err instanceof GrError
    const message = err instanceof Error ? err.message : String(err)
    throw new PcAppError(message, { shown, displayed, calls, via }, { cause: err })
  }
}
