/** Small statistics for benchmarks: medians of repeated runs, percentiles of latencies. */

/** The value at fraction `p` (0..1) of the sorted values (nearest rank); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

export function median(values: readonly number[]): number {
  return percentile(values, 0.5)
}

/** `1234.5` → `1,235`; small numbers keep `digits` decimals. */
export function fmt(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return String(n)
  return Math.abs(n) >= 100
    ? Math.round(n).toLocaleString('en-US')
    : n.toLocaleString('en-US', { maximumFractionDigits: digits })
}
