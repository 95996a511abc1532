/**
 * Schedulers of the latent-diffusion decoder, in float64: DDIM (η = 0), Euler and PNDM/PLMS, each
 * with Stable Diffusion 1.5's configuration (epsilon prediction, `steps_offset` 1, `set_alpha_to_one`
 * false, PNDM with `skip_prk_steps`). training/rebeca_train/latent_schedulers.py is the reference;
 * the fixture's parity.json carries its trajectories and the tests here reproduce them.
 *
 * A scheduler instance serves one decode: PNDM keeps the last noise predictions between calls. All
 * updates are elementwise, so a sample's trajectory never depends on the batch it shares.
 */

export type LatentSchedulerName = "ddim" | "euler" | "pndm";
export const LATENT_SCHEDULERS: readonly LatentSchedulerName[] = ["ddim", "euler", "pndm"];

export interface LatentScheduler {
  readonly name: LatentSchedulerName;
  /** The timestep of each UNet call, in order; its length is the number of UNet calls. */
  readonly timesteps: readonly number[];
  /** Standard deviation of the initial latent noise (x_T = initSigma · N(0, I)). */
  readonly initSigma: number;
  /** Euler only: σ at each call, then 0 (length timesteps + 1). */
  readonly sigmas?: readonly number[];
  /** Factor applied to the sample before UNet call `i` (Euler's 1/√(σ²+1); 1 otherwise). */
  inputScale(i: number): number;
  /** After UNet call `i` predicted `eps` for sample `x`: the next sample (written into `x`). */
  step(eps: Float64Array, i: number, x: Float64Array): void;
}

export interface LatentSchedulerOptions {
  /** Added to the "leading" timesteps of DDIM and PNDM (SD 1.5: 1). @default 1 */
  readonly stepsOffset?: number;
}

/** Creates a fresh scheduler for one decode of `steps` steps over the given ᾱ (length T). */
export function createLatentScheduler(
  name: LatentSchedulerName,
  alphasCumprod: Float64Array,
  steps: number,
  options: LatentSchedulerOptions = {},
): LatentScheduler {
  const T = alphasCumprod.length;
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new RangeError(`steps must be an integer in 1..${T}, got ${steps}`);
  const offset = options.stepsOffset ?? 1;
  switch (name) {
    case "ddim":
      return ddim(alphasCumprod, steps, offset);
    case "euler":
      return euler(alphasCumprod, steps);
    case "pndm":
      if (steps < 2) throw new RangeError("pndm needs at least 2 steps");
      return pndm(alphasCumprod, steps, offset);
    default:
      throw new RangeError(`unknown scheduler ${JSON.stringify(name)} (expected one of ${LATENT_SCHEDULERS.join(", ")})`);
  }
}

/** "Leading" spacing: every ⌊T/S⌋-th timestep from 0, plus the offset, descending. */
function leading(T: number, steps: number, offset: number): number[] {
  const ratio = Math.floor(T / steps);
  return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + offset);
}

/** ᾱ of a previous timestep; before the first one it is ᾱ[0] (SD 1.5's set_alpha_to_one = false). */
function alphaAt(a: Float64Array, t: number): number {
  return t >= 0 ? a[t]! : a[0]!;
}

function ddim(a: Float64Array, steps: number, offset: number): LatentScheduler {
  const ratio = Math.floor(a.length / steps);
  const timesteps = leading(a.length, steps, offset);
  return {
    name: "ddim",
    timesteps,
    initSigma: 1,
    inputScale: () => 1,
    step(eps, i, x) {
      const t = timesteps[i]!;
      const at = a[t]!;
      const ap = alphaAt(a, t - ratio);
      const sa = Math.sqrt(at);
      const sb = Math.sqrt(1 - at);
      const pa = Math.sqrt(ap);
      const pb = Math.sqrt(1 - ap);
      for (let k = 0; k < x.length; k++) {
        const x0 = (x[k]! - sb * eps[k]!) / sa;
        x[k] = pa * x0 + pb * eps[k]!;
      }
    },
  };
}

function euler(a: Float64Array, steps: number): LatentScheduler {
  const T = a.length;
  // "linspace" spacing: fractional timesteps; σ interpolated linearly between integer timesteps.
  const timesteps = Array.from({ length: steps }, (_, i) => (steps > 1 ? ((T - 1) * (steps - 1 - i)) / (steps - 1) : T - 1));
  const sigmaAt = (t: number): number => {
    const lo = Math.floor(t);
    const hi = Math.min(lo + 1, T - 1);
    const s = (k: number): number => Math.sqrt((1 - a[k]!) / a[k]!);
    return lo === hi ? s(lo) : s(lo) + (t - lo) * (s(hi) - s(lo));
  };
  const sigmas = [...timesteps.map(sigmaAt), 0];
  return {
    name: "euler",
    timesteps,
    sigmas,
    initSigma: sigmas[0]!,
    inputScale: (i) => 1 / Math.sqrt(sigmas[i]! ** 2 + 1),
    step(eps, i, x) {
      // For epsilon prediction the ODE derivative (x − x̂0)/σ is eps itself.
      const dt = sigmas[i + 1]! - sigmas[i]!;
      for (let k = 0; k < x.length; k++) x[k] = x[k]! + eps[k]! * dt;
    },
  };
}

function pndm(a: Float64Array, steps: number, offset: number): LatentScheduler {
  const ratio = Math.floor(a.length / steps);
  const lead = leading(a.length, steps, offset).reverse();
  // PLMS repeats the second-to-last leading timestep: S steps are S + 1 UNet calls, the first two
  // at the same timestep (a Heun-like warm-up before the multistep has history).
  const timesteps = [...lead.slice(0, -1), lead[lead.length - 2]!, lead[lead.length - 1]!].reverse();
  const ets: Float64Array[] = [];
  let warmupSample: Float64Array | undefined;

  const prevSample = (x: Float64Array, t: number, prev: number, e: Float64Array, out: Float64Array): void => {
    const at = a[t]!;
    const ap = alphaAt(a, prev);
    const sampleCoeff = Math.sqrt(ap / at);
    const denom = at * Math.sqrt(1 - ap) + Math.sqrt(at * (1 - at) * ap);
    const c = (ap - at) / denom;
    for (let k = 0; k < out.length; k++) out[k] = sampleCoeff * x[k]! - c * e[k]!;
  };

  return {
    name: "pndm",
    timesteps,
    initSigma: 1,
    inputScale: () => 1,
    step(eps, i, x) {
      let t = timesteps[i]!;
      let prev = t - ratio;
      if (i !== 1) {
        if (ets.length > 3) ets.shift();
        ets.push(Float64Array.from(eps));
      } else {
        prev = t;
        t = t + ratio;
      }
      const n = x.length;
      const e = new Float64Array(n);
      let from = x;
      const h = ets.length;
      const E = (j: number): Float64Array => ets[h - j]!;
      if (h === 1 && i === 0) {
        e.set(eps);
        warmupSample = Float64Array.from(x);
      } else if (h === 1 && i === 1) {
        for (let k = 0; k < n; k++) e[k] = (eps[k]! + E(1)[k]!) / 2;
        from = warmupSample!;
        warmupSample = undefined;
      } else if (h === 2) {
        for (let k = 0; k < n; k++) e[k] = (3 * E(1)[k]! - E(2)[k]!) / 2;
      } else if (h === 3) {
        for (let k = 0; k < n; k++) e[k] = (23 * E(1)[k]! - 16 * E(2)[k]! + 5 * E(3)[k]!) / 12;
      } else {
        for (let k = 0; k < n; k++) e[k] = (55 * E(1)[k]! - 59 * E(2)[k]! + 37 * E(3)[k]! - 9 * E(4)[k]!) / 24;
      }
      prevSample(from, t, prev, e, x);
    },
  };
}
