/** Cumulative buckets of one Prometheus histogram series from /metrics text. */
export function histogramBuckets(text: string, name: string, labelMatch: string): { le: number; count: number }[] {
  const out: { le: number; count: number }[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}_bucket{`) || !line.includes(labelMatch)) continue;
    const le = /le="([^"]+)"/.exec(line)![1]!;
    out.push({ le: le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), count: Number(line.slice(line.lastIndexOf(" ") + 1)) });
  }
  return out.sort((a, b) => a.le - b.le);
}

/** Bucket-wise difference (after − before), to measure one run on a long-lived process. */
export function diffBuckets(after: { le: number; count: number }[], before: { le: number; count: number }[]) {
  return after.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }));
}

/** Quantile by linear interpolation inside the bucket that holds it (what histogram_quantile does). */
export function bucketQuantile(buckets: { le: number; count: number }[], q: number): number {
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / Math.max(1, b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** The value of a sample of `name` (its first series, whatever its labels) from /metrics text; NaN when absent. */
export function sampleValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : Number.NaN;
}
