/** The value at quantile `p` (0..1) of ascending `sorted` values (nearest rank below); NaN if empty. */
export function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}
