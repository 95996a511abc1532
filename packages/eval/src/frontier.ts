/**
 * Judging samplers on the personalization–diversity frontier (docs/evaluation.md, "Samplers").
 *
 * Guidance trades diversity for personalization differently per sampler, so samplers are not
 * compared at equal guidance: each sampler's guidance sweep traces a curve of T (median_u m_u)
 * against diversity, and a fast sampler is compared with the paper's DDPM-1000 curve at the fast
 * sampler's own diversity. The comparison is one-sided (a sampler above the curve passes) and
 * carries a bootstrap interval over users and DDPM-1000's own seed-to-seed noise. Pure: per-user
 * scores in, numbers out.
 */
import { median, seededRandom } from "./permutation.js";

/** One measured point: a sampler configuration at one guidance on one seed set, per user. */
export interface FrontierRun {
  sampler: string;
  /** Prior evaluations per embedding (one CFG pair = one evaluation). */
  steps: number;
  spacing: string;
  guidance: number;
  /** Which of the independent seed sets produced it (0, 1, …). */
  seedSet: number;
  /** m_u per user (mean verifier score of the user's own items), users in the same order in every run. */
  own: ArrayLike<number>;
  /** Per-user diversity (mean pairwise cosine distance of the user's items). */
  diversity: ArrayLike<number>;
  /** The items, [users × itemsPerUser × dim] grouped by user, for the energy distance. */
  samples?: Float32Array;
  itemsPerUser?: number;
  dim?: number;
}

/** A sampler configuration (everything but guidance and seed set). */
export const configKey = (r: Pick<FrontierRun, "sampler" | "steps" | "spacing">) =>
  r.sampler === "ddpm" ? `ddpm-${r.steps}` : `${r.sampler}-${r.steps}-${r.spacing}`;

const mean = (xs: ArrayLike<number>, idx?: ArrayLike<number>) => {
  const n = idx ? idx.length : xs.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[idx ? idx[i]! : i]!;
  return n ? s / n : 0;
};
const medianAt = (xs: ArrayLike<number>, idx: ArrayLike<number>) => median(Array.from(idx, (i) => xs[i]!));

/** T = median_u m_u and diversity = mean_u diversity_u over the users `idx` (all users when omitted). */
export function point(run: FrontierRun, idx?: ArrayLike<number>): { T: number; diversity: number } {
  const all = idx ?? Array.from({ length: run.own.length }, (_, i) => i);
  return { T: medianAt(run.own, all), diversity: mean(run.diversity, all) };
}

/**
 * The baseline curve's T at diversity `d`: piecewise linear between the baseline's points sorted by
 * diversity. Above its most diverse point the curve is held flat (conservative for the candidate:
 * more diversity usually costs T); below its least diverse point there is nothing to compare with
 * (undefined) unless `extendBelow`, which holds it flat there too (used inside the bootstrap only, for
 * resamples of a point whose estimate is in range).
 */
export function curveAt(curve: { T: number; diversity: number }[], d: number, extendBelow = false): number | undefined {
  const c = [...curve].sort((a, b) => a.diversity - b.diversity);
  if (c.length === 0) return undefined;
  if (d < c[0]!.diversity) return extendBelow ? c[0]!.T : undefined;
  if (d >= c[c.length - 1]!.diversity) return c[c.length - 1]!.T;
  for (let j = 1; j < c.length; j++) {
    const a = c[j - 1]!;
    const b = c[j]!;
    if (d <= b.diversity) return b.diversity === a.diversity ? Math.max(a.T, b.T) : a.T + ((d - a.diversity) / (b.diversity - a.diversity)) * (b.T - a.T);
  }
  return undefined;
}

/** DDPM-1000's seed-to-seed noise: the largest |ΔT| and |Δdiversity| between its seed sets at equal guidance. */
export function seedNoise(baseline: FrontierRun[]): { T: number; diversity: number } {
  let T = 0;
  let diversity = 0;
  for (const a of baseline) {
    for (const b of baseline) {
      if (a.guidance !== b.guidance || a.seedSet >= b.seedSet) continue;
      const pa = point(a);
      const pb = point(b);
      T = Math.max(T, Math.abs(pa.T - pb.T));
      diversity = Math.max(diversity, Math.abs(pa.diversity - pb.diversity));
    }
  }
  return { T, diversity };
}

export interface GapEstimate {
  /** T − baseline T at the candidate's diversity; undefined when the candidate is less diverse than every baseline point. */
  gap?: number;
  /**
   * 5 % and 95 % bootstrap quantiles over users (resampled jointly for candidate and baseline): `lo`
   * is the one-sided 95 % lower bound the rule uses (the comparison is one-sided).
   */
  lo?: number;
  hi?: number;
}

/**
 * One run per configuration and guidance: per user, the mean of the seed sets' m_u (= m_u over all
 * the user's items) and of their diversities. A measured point uses all its data; the seed sets
 * themselves only measure the baseline's seed-to-seed noise.
 */
export function poolSeedSets(runs: FrontierRun[]): FrontierRun[] {
  const groups = new Map<string, FrontierRun[]>();
  for (const r of runs) {
    const key = `${configKey(r)}|${r.guidance}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    const n = rs[0]!.own.length;
    const avg = (f: (r: FrontierRun) => ArrayLike<number>) => Float64Array.from({ length: n }, (_, u) => rs.reduce((s, r) => s + f(r)[u]!, 0) / rs.length);
    const { samples: _samples, ...first } = rs[0]!;
    return { ...first, seedSet: -1, own: avg((r) => r.own), diversity: avg((r) => r.diversity) };
  });
}

/** A stable bootstrap seed per point, so a point's interval does not depend on what else is judged with it. */
function pointSeed(key: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Frontier gap of `run` to the baseline runs (same seed set, or pooled), with a percentile bootstrap over users. */
export function frontierGap(run: FrontierRun, baseline: FrontierRun[], bootstrap = 2000, seed = 1): GapEstimate {
  const base = baseline.filter((b) => b.seedSet === run.seedSet);
  const gapFor = (idx?: ArrayLike<number>) => {
    const p = point(run, idx);
    const at = curveAt(
      base.map((b) => point(b, idx)),
      p.diversity,
      idx !== undefined,
    );
    return at === undefined ? undefined : p.T - at;
  };
  const gap = gapFor();
  if (gap === undefined) return {};
  const n = run.own.length;
  const rand = seededRandom(seed);
  const idx = new Int32Array(n);
  const draws: number[] = [];
  for (let k = 0; k < bootstrap; k++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rand() * n);
    draws.push(gapFor(idx)!);
  }
  draws.sort((a, b) => a - b);
  return { gap, lo: draws[Math.floor(0.05 * bootstrap)]!, hi: draws[Math.min(bootstrap - 1, Math.ceil(0.95 * bootstrap) - 1)]! };
}

/**
 * Energy distance between two samples in R^dim (X [n, dim], Y [m, dim]):
 * 2·E|X−Y| − E|X−X′| − E|Y−Y′| (within-sample means over distinct pairs). 0 in expectation when X and
 * Y come from the same distribution, so it is read against a floor measured the same way.
 */
export function energyDistance(x: Float32Array, y: Float32Array, dim: number): number {
  const n = x.length / dim;
  const m = y.length / dim;
  const dist = (a: Float32Array, i: number, b: Float32Array, j: number) => {
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const v = a[i * dim + d]! - b[j * dim + d]!;
      s += v * v;
    }
    return Math.sqrt(s);
  };
  const within = (a: Float32Array, k: number) => {
    let s = 0;
    for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) s += dist(a, i, a, j);
    return k > 1 ? (2 * s) / (k * (k - 1)) : 0;
  };
  let cross = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) cross += dist(x, i, y, j);
  return (2 * cross) / (n * m) - within(x, n) - within(y, m);
}

/** Mean over users of the energy distance between user u's items in `a` and in `b`. */
export function meanUserEnergyDistance(a: FrontierRun, b: FrontierRun): number | undefined {
  if (!a.samples || !b.samples || !a.itemsPerUser || !b.itemsPerUser || !a.dim) return undefined;
  const users = a.own.length;
  const per = a.dim;
  let s = 0;
  for (let u = 0; u < users; u++) {
    const x = a.samples.subarray(u * a.itemsPerUser * per, (u + 1) * a.itemsPerUser * per);
    const y = b.samples.subarray(u * b.itemsPerUser * per, (u + 1) * b.itemsPerUser * per);
    s += energyDistance(x, y, per);
  }
  return s / users;
}

export interface FrontierPoint {
  config: string;
  sampler: string;
  steps: number;
  spacing: string;
  guidance: number;
  /** Over both seed sets (per user, the mean of the sets' values). */
  T: number;
  diversity: number;
  /** T and diversity of each seed set. */
  bySeedSet: { T: number; diversity: number }[];
  /** Frontier gap to the baseline (seed sets pooled); lo/hi: 5 % and 95 % bootstrap quantiles over users. */
  gap?: number;
  lo?: number;
  hi?: number;
  /** Mean per-user energy distance to the baseline's samples at the same guidance (other seed set; mean over sets). */
  energy?: number;
  /** The baseline's own seed-to-seed energy distance at this guidance (the floor). */
  energyFloor?: number;
  /** lo (the one-sided 95 % lower bound) ≥ −noise; undefined for points less diverse than every baseline point (not comparable). */
  passes?: boolean;
}

export interface SamplerJudgement {
  config: string;
  sampler: string;
  steps: number;
  spacing: string;
  /** Comparable points (at or above the baseline's least diverse point). */
  comparable: number;
  /** Every comparable point passes and there are at least `minComparable` of them. */
  qualifies: boolean;
  /** The smallest lower bound over the comparable points. */
  worstLower?: number;
}

export interface FrontierResult {
  baseline: string;
  noise: { T: number; diversity: number };
  points: FrontierPoint[];
  samplers: SamplerJudgement[];
  /** The qualifying configuration with the fewest evaluations, and its guidance (see {@link chooseDefault}). */
  defaults?: { sampler: string; steps: number; spacing: string; guidance: number };
}

export interface FrontierOptions {
  /** Configuration key of the baseline. @default "ddpm-1000" */
  baseline?: string;
  bootstrap?: number;
  /** A sampler needs at least this many comparable points to qualify. @default 3 */
  minComparable?: number;
  /** Guidance of the baseline point the default must match or beat (T and diversity). @default 3 */
  referenceGuidance?: number;
  seed?: number;
}

/**
 * The rule (replacing the two-sided "within 0.02 at equal guidance"): a sampler qualifies when, at
 * every measured point (guidance; its seed sets pooled) that is comparable, the one-sided 95 %
 * bootstrap lower bound of its frontier gap is ≥ −(the baseline's seed-to-seed noise in T).
 */
export function judgeSamplers(runs: FrontierRun[], options: FrontierOptions = {}): FrontierResult {
  const baselineKey = options.baseline ?? "ddpm-1000";
  const baseline = runs.filter((r) => configKey(r) === baselineKey);
  if (baseline.length === 0) throw new Error(`no ${baselineKey} runs to compare with`);
  const noise = seedNoise(baseline);
  const pooledBaseline = poolSeedSets(baseline);
  const points: FrontierPoint[] = [];
  for (const r of poolSeedSets(runs)) {
    const key = `${configKey(r)}|${r.guidance}`;
    const sets = runs.filter((x) => `${configKey(x)}|${x.guidance}` === key).sort((a, b) => a.seedSet - b.seedSet);
    const p = point(r);
    const isBase = configKey(r) === baselineKey;
    const g = isBase ? {} : frontierGap(r, pooledBaseline, options.bootstrap ?? 2000, pointSeed(key, options.seed ?? 1));
    // energy: each seed set against the baseline's other seed set at this guidance; floor: the baseline's two sets
    const cross = sets.flatMap((x) => {
      const other = baseline.find((b) => b.guidance === x.guidance && b.seedSet !== x.seedSet);
      const e = other ? meanUserEnergyDistance(x, other) : undefined;
      return e === undefined ? [] : [e];
    });
    const [b0, b1] = baseline.filter((b) => b.guidance === r.guidance);
    const energyFloor = b0 && b1 ? meanUserEnergyDistance(b0, b1) : undefined;
    points.push({
      config: configKey(r),
      sampler: r.sampler,
      steps: r.steps,
      spacing: r.spacing,
      guidance: r.guidance,
      T: p.T,
      diversity: p.diversity,
      bySeedSet: sets.map((x) => point(x)),
      ...g,
      ...(cross.length ? { energy: cross.reduce((a, b) => a + b, 0) / cross.length } : {}),
      ...(energyFloor !== undefined ? { energyFloor } : {}),
      ...(g.lo !== undefined ? { passes: g.lo >= -noise.T } : {}),
    });
  }
  const samplers: SamplerJudgement[] = [];
  for (const key of [...new Set(points.map((p) => p.config))].filter((k) => k !== baselineKey)) {
    const ps = points.filter((p) => p.config === key);
    const comparable = ps.filter((p) => p.passes !== undefined);
    const lows = comparable.map((p) => p.lo!);
    samplers.push({
      config: key,
      sampler: ps[0]!.sampler,
      steps: ps[0]!.steps,
      spacing: ps[0]!.spacing,
      comparable: comparable.length,
      qualifies: comparable.length >= (options.minComparable ?? 3) && comparable.every((p) => p.passes),
      ...(lows.length ? { worstLower: Math.min(...lows) } : {}),
    });
  }
  const result: FrontierResult = { baseline: baselineKey, noise, points, samplers };
  const defaults = chooseDefault(result, options.referenceGuidance ?? 3);
  return defaults ? { ...result, defaults } : result;
}

/**
 * Default = the qualifying configuration with the fewest evaluations (ties: the larger worst lower
 * bound). Its guidance: the smallest (most diverse) one at which it matches or beats the baseline —
 * frontier gap ≥ 0 — with T at least the baseline's T at `referenceGuidance` (the
 * guidance the paper's sampler was served at); if none, the guidance with the largest mean gap.
 */
export function chooseDefault(result: Omit<FrontierResult, "defaults">, referenceGuidance = 3): FrontierResult["defaults"] {
  const best = result.samplers.filter((s) => s.qualifies).sort((a, b) => a.steps - b.steps || (b.worstLower ?? 0) - (a.worstLower ?? 0))[0];
  if (!best) return undefined;
  const avg = (ps: FrontierPoint[], f: (p: FrontierPoint) => number) => ps.reduce((s, p) => s + f(p), 0) / ps.length;
  const ref = result.points.filter((p) => p.config === result.baseline && p.guidance === referenceGuidance);
  const refT = ref.length ? avg(ref, (p) => p.T) : Number.NEGATIVE_INFINITY;
  const mine = result.points.filter((p) => p.config === best.config);
  const byGuidance = [...new Set(mine.map((p) => p.guidance))].map((g) => {
    const ps = mine.filter((p) => p.guidance === g);
    return { g, T: avg(ps, (p) => p.T), gap: avg(ps, (p) => p.gap ?? Number.NEGATIVE_INFINITY) };
  });
  const matching = byGuidance.filter((x) => x.gap >= 0 && x.T >= refT).sort((a, b) => a.g - b.g);
  const pick = matching[0] ?? [...byGuidance].sort((a, b) => b.gap - a.gap)[0]!;
  return { sampler: best.sampler, steps: best.steps, spacing: best.spacing, guidance: pick.g };
}
