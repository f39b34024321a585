/** Durations as users read them, in Chinese: "约 40 秒", "约 2 分钟", "约 3 小时". */
export function humanDuration(seconds: number): string {
  if (seconds < 60) return `约 ${Math.max(1, Math.round(seconds))} 秒`
  const minutes = Math.round(seconds / 60)
  if (minutes < 120) return `约 ${minutes} 分钟`
  return `约 ${Math.round(minutes / 6) / 10} 小时`
}
