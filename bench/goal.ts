/**
 * What every benchmark in `bench/` returns: one line per goal of the performance issue, the
 * relay's figure beside its peer's, measured in the same run (`npm run bench` prints them last).
 */
export interface Goal {
  /** Short kebab-case name, e.g. `submit-rate`. */
  readonly name: string
  /** The relay's figure with its unit, e.g. `1,540 req/s`. */
  readonly figure: string
  /** The peer's figure with what the peer is, e.g. `bare express + sqlite FULL: 1,900 req/s`. */
  readonly peer: string
  /** The target as the issue states it, e.g. `>= 0.8x peer`. */
  readonly target: string
  readonly ok: boolean
}

export interface BenchOptions {
  /** `npm run bench`: the quick version (all benches together under 5 minutes). */
  readonly quick: boolean
  /** Progress and detail lines (stdout). */
  readonly log: (line: string) => void
}

export type Bench = (o: BenchOptions) => Promise<Goal[]>

/** The line `npm run bench` ends with, one per goal. */
export function goalLine(g: Goal): string {
  return `GOAL ${g.name}: ${g.figure} vs ${g.peer} (goal ${g.target}) ${g.ok ? 'ok' : 'short'}`
}
