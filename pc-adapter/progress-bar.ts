/**
 * The command line's progress bar for a followed task (status-text.ts `progressLine`). On a
 * terminal one line is redrawn in place with `\r` (cut to the terminal's width: a wrapped line
 * cannot be redrawn); elsewhere (a pipe, a log file) a line is printed per change of state,
 * percent or message. Other lines (`print`) go above the bar. The remaining run time is measured
 * here: how fast the percent has moved since the run was first seen.
 */
import type { TaskStatusData } from '../protocol/index.js'
import { progressLine } from './status-text.js'

export interface ProgressBarOptions {
  readonly write: (text: string) => void
  /** Redraw one line (a terminal); else a line per change. */
  readonly tty: boolean
  /** The terminal's width in columns; unknown: lines are not cut. */
  readonly columns?: number | undefined
  /** Monotonic ms; default performance.now. */
  readonly now?: () => number
}

const CLEAR_LINE = '\r\x1b[K'

export class ProgressBar {
  readonly #o: ProgressBarOptions
  /** The bar as on screen now (a terminal), '' when none is drawn. */
  #drawn = ''
  #lastKey = ''
  /** When the current run was first seen, and at what percent. */
  #run: { readonly at: number; readonly progress: number } | null = null

  constructor(options: ProgressBarOptions) {
    this.#o = options
  }

  update(status: TaskStatusData): void {
    const line = progressLine(status, this.#remainingS(status))
    if (!this.#o.tty) {
      const key = `${status.status}|${Math.round(status.progress)}|${status.msg}`
      if (key !== this.#lastKey) this.#o.write(`${line}\n`)
      this.#lastKey = key
      return
    }
    const fitted = fit(line, this.#o.columns)
    if (fitted !== this.#drawn) this.#o.write(`${CLEAR_LINE}${fitted}`)
    this.#drawn = fitted
  }

  /** A line of its own, above the bar (which is drawn again below it). */
  print(line: string): void {
    if (this.#drawn === '') {
      this.#o.write(`${line}\n`)
      return
    }
    this.#o.write(`${CLEAR_LINE}${line}\n${this.#drawn}`)
  }

  /** Leave the bar as it is and move below it. */
  end(): void {
    if (this.#drawn !== '') this.#o.write('\n')
    this.#drawn = ''
  }

  #remainingS(status: TaskStatusData): number | null {
    if (status.status !== 'processing') {
      this.#run = null
      return null
    }
    const now = (this.#o.now ?? (() => performance.now()))()
    this.#run ??= { at: now, progress: status.progress }
    const moved = status.progress - this.#run.progress
    const elapsedS = (now - this.#run.at) / 1000
    if (moved <= 0 || elapsedS <= 0) return null
    return (elapsedS * (100 - status.progress)) / moved
  }
}

/** Cut `line` to `columns` terminal cells (wide characters take two), with `…`. */
export function fit(line: string, columns: number | undefined): string {
  if (columns === undefined || columns <= 1) return line
  const room = columns - 1
  let total = 0
  for (const ch of line) total += cellWidth(ch)
  if (total <= room) return line
  let width = 0
  let out = ''
  for (const ch of line) {
    const w = cellWidth(ch)
    if (width + w > room - 1) return `${out}…`
    width += w
    out += ch
  }
  return out
}

function cellWidth(ch: string): number {
  const code = ch.codePointAt(0) ?? 0
  if (code === 0xfe0f || (code >= 0x300 && code < 0x370)) return 0
  // CJK, full-width forms, emoji: two cells.
  return code >= 0x1100 ? 2 : 1
}
