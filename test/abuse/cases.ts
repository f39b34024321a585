/**
 * The abuse suite's ledger: every distinct hostile input, connection pattern or fault that was
 * tried and checked is one case (1,000 connections of one pattern are one case), with the point of
 * point of docs/design.md §3.9 it covers and whether the relay behaved as agreed.
 */
import { errorMessage } from '../../lib/errors.js'

/** The nine points of docs/design.md §3.9. */
export type Point = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9

export interface CaseResult {
  readonly area: string
  readonly name: string
  readonly point: Point
  readonly ok: boolean
  readonly detail: string
}

/** Which case: its area (a phase of the suite), the §3.9 point it covers, and what it tries. */
export interface CaseLabel {
  readonly area: string
  readonly point: Point
  readonly name: string
}

export class Ledger {
  readonly #cases: CaseResult[] = []

  /** Run one case: `check` throws (or returns a message) when the relay misbehaved. */
  async run(label: CaseLabel, check: () => Promise<unknown>): Promise<boolean> {
    const { area, point, name } = label
    try {
      const note = await check()
      this.#cases.push({
        area,
        name,
        point,
        ok: true,
        detail: typeof note === 'string' ? note : '',
      })
      return true
    } catch (err) {
      this.#cases.push({ area, name, point, ok: false, detail: errorMessage(err) })
      return false
    }
  }

  /** Record a case checked elsewhere. */
  add(label: CaseLabel, outcome: { ok: boolean; detail?: string }): void {
    this.#cases.push({ ...label, ok: outcome.ok, detail: outcome.detail ?? '' })
  }

  get cases(): readonly CaseResult[] {
    return this.#cases
  }

  failures(area?: string): CaseResult[] {
    return this.#cases.filter((c) => !c.ok && (area === undefined || c.area === area))
  }

  count(area?: string): number {
    return this.#cases.filter((c) => area === undefined || c.area === area).length
  }

  pointsCovered(): Set<Point> {
    return new Set(this.#cases.map((c) => c.point))
  }

  describe(area: string): string {
    return this.failures(area)
      .map((c) => `  ✗ [${c.area} §${String(c.point)}] ${c.name}: ${c.detail}`)
      .join('\n')
  }
}

/** Throw with `message` unless `condition` holds. */
export function expectThat(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message)
}
