/**
 * Noise schedules and timestep spacing, in float64. The manifest carries the trainer's
 * `alphas_cumprod`; the sampler uses those values, and this module exists to validate them.
 */

/** Names of noise schedules this package can recompute. */
export type ScheduleName = "squaredcos_cap_v2";

/**
 * `alphas_cumprod` of the cosine schedule (Nichol & Dhariwal), as diffusers' `squaredcos_cap_v2`:
 * β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), maxBeta), ᾱ(s) = cos²((s + 0.008)/1.008 · π/2).
 *
 * @param maxBeta cap on each β, which keeps ᾱ_{T−1} strictly positive. @default 0.999
 */
export function cosineAlphasCumprod(timesteps: number, maxBeta = 0.999): Float64Array {
  if (!Number.isInteger(timesteps) || timesteps < 1) {
    throw new RangeError(`timesteps must be a positive integer, got ${timesteps}`);
  }
  const alphaBar = (s: number): number => Math.cos(((s + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const out = new Float64Array(timesteps);
  let prod = 1;
  for (let i = 0; i < timesteps; i++) {
    const beta = Math.min(1 - alphaBar((i + 1) / timesteps) / alphaBar(i / timesteps), maxBeta);
    prod *= 1 - beta;
    out[i] = prod;
  }
  return out;
}

/** Recomputes a named schedule. */
export function alphasCumprod(name: ScheduleName, timesteps: number): Float64Array {
  switch (name) {
    case "squaredcos_cap_v2":
      return cosineAlphasCumprod(timesteps);
  }
}

/**
 * Problems with an `alphas_cumprod` array (empty when valid): length T, each value in (0, 1],
 * strictly decreasing. A sampler divides by √(1−ᾱ) and by ᾱ_prev, so these are real preconditions.
 */
export function validateAlphasCumprod(values: ArrayLike<number>, timesteps: number): string[] {
  const problems: string[] = [];
  if (values.length !== timesteps) {
    problems.push(`alphas_cumprod has ${values.length} values, expected ${timesteps}`);
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v) || v <= 0 || v >= 1 + 1e-12) {
      problems.push(`alphas_cumprod[${i}] = ${v} is outside (0, 1]`);
      break;
    }
    if (i > 0 && !(v < values[i - 1]!)) {
      problems.push(`alphas_cumprod is not strictly decreasing at index ${i}`);
      break;
    }
  }
  return problems;
}

/** Timestep grids of the S-step samplers (docs/model-format.md, "Samplers"). */
export const TIMESTEP_SPACINGS = ["linspace", "leading", "trailing"] as const;
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

/**
 * Timesteps visited by an S-step sampler over a T-step schedule, highest first, in integer arithmetic
 * so that Python and TypeScript agree exactly:
 * - `linspace`: t_i = floor((T−1)(S−1−i)/(S−1)), [T−1] when S = 1 (ends at t = 0);
 * - `leading`: t_i = floor((S−1−i)·T/S) (ends at t = 0 and starts below T−1);
 * - `trailing`: t_i = T−1 − floor(i·T/S) (starts at T−1; no evaluation is spent at t = 0, which
 *   matters at a handful of steps).
 */
export function timesteps(T: number, S: number, spacing: TimestepSpacing = "linspace"): Int32Array {
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`T must be a positive integer, got ${T}`);
  if (!Number.isInteger(S) || S < 1 || S > T) {
    throw new RangeError(`steps must be an integer in 1..${T}, got ${S}`);
  }
  const out = new Int32Array(S);
  switch (spacing) {
    case "linspace":
      if (S === 1) return Int32Array.of(T - 1);
      for (let i = 0; i < S; i++) out[i] = Math.floor(((T - 1) * (S - 1 - i)) / (S - 1));
      return out;
    case "leading":
      for (let i = 0; i < S; i++) out[i] = Math.floor(((S - 1 - i) * T) / S);
      return out;
    case "trailing":
      for (let i = 0; i < S; i++) out[i] = T - 1 - Math.floor((i * T) / S);
      return out;
    default:
      throw new RangeError(`unknown timestep spacing ${String(spacing)} (expected one of ${TIMESTEP_SPACINGS.join(", ")})`);
  }
}
