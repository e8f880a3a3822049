/** Nearest-rank quantile of values sorted ascending (q in 0..1): what every latency figure Encore prints uses. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
