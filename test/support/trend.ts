/*
 * Trend estimates for memory samples. A process's RSS follows its GC's sawtooth; a leak lifts the
 * sawtooth's floor for good.
 */

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The lowest sample in each consecutive window of `width` (x units), at its own x. */
export function windowFloors(xs: readonly number[], ys: readonly number[], width: number): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  let at = -1;
  let windowEnd = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i]! >= windowEnd) {
      windowEnd = (at < 0 ? xs[i]! : windowEnd) + width;
      x.push(xs[i]!);
      y.push(ys[i]!);
      at = x.length - 1;
    } else if (ys[i]! < y[at]!) {
      x[at] = xs[i]!;
      y[at] = ys[i]!;
    }
  }
  return { x, y };
}

/**
 * Slope of a sawtooth's floor: the least-squares slope through the minimum of each third of the
 * window. A window that happens to end high on a tooth (what a plain regression over 60 s reads
 * as growth) does not count; a heap still growing to its steady size does, which is why a soak
 * samples only after its heaps have settled.
 */
export function floorSlope(xs: readonly number[], ys: readonly number[]): number {
  const span = xs[xs.length - 1]! - xs[0]!;
  if (xs.length < 6 || span <= 0) return slope(xs, ys);
  const f = windowFloors(xs, ys, span / 3 + 1e-9);
  return slope(f.x, f.y);
}
