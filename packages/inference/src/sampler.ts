/**
 * Samplers with classifier-free guidance on an x0-predicting prior (docs/model-format.md, "Samplers"):
 * DDPM ("fixed small" variance, the paper's), DDIM (η = 0), DPM-Solver++(2M) and its SDE variant
 * (Lu et al. 2022, data-prediction form). Pure: the model is a role interface, state is float64, and
 * the model sees float32 exactly as the Python reference (training/rebeca_train/sampler.py) does.
 *
 * Every sampler ends with its last evaluation's x0 (the step to ᾱ = 1). DPM-Solver++ takes a
 * first-order step (which is DDIM's) while it has no previous x0, so with S ≤ 2 it equals DDIM.
 * Noise of step i is rng stream i + 1 of the item's seed, so an item never depends on its batch.
 */
import { normalVector } from "./rng.js";
import { timesteps as spacedTimesteps, type TimestepSpacing } from "./schedule.js";

/** One batched prior evaluation: `rows` rows of every tensor, row-major. */
export interface PriorInput {
  /** Noisy embeddings [rows, D]. */
  readonly xT: Float32Array;
  /** Timestep of each row [rows], 0..T−1. */
  readonly t: BigInt64Array;
  /** User table rows [rows, U] (the null row for unconditional rows). */
  readonly user: Float32Array;
  /** Like condition of each row [rows]: 0 dislike, 1 like, 2 null. */
  readonly like: BigInt64Array;
  readonly rows: number;
}

/** The x0-predicting prior, e.g. `prior.onnx` behind onnxruntime (see `createOnnxPrior`). */
export interface PriorModel {
  /**
   * Predicted clean embeddings [rows, D], float32. The input buffers belong to the caller, which
   * reuses them once the promise settles: copy anything kept beyond that.
   */
  predictX0(input: PriorInput): Promise<Float32Array>;
}

/** Samplers of docs/model-format.md ("Samplers"); `ddpm` is the paper's 1000-step ancestral sampler. */
export const SAMPLER_NAMES = ["ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde"] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

/** Model-level constants a sampler needs; normally taken from the prior manifest. */
export interface SamplerConfig {
  /** ᾱ_t for t = 0..T−1, float64, strictly decreasing. */
  readonly alphasCumprod: ArrayLike<number>;
  /** D. */
  readonly embeddingDim: number;
  /** U. */
  readonly userDim: number;
  /** Predicted x0 is clipped to ±clipX0 each step. */
  readonly clipX0: number;
  /** Like value of conditional rows. @default 1 */
  readonly like?: number;
  /** Like value of unconditional rows. @default 2 */
  readonly nullLike?: number;
}

/** Progress of a running sample, reported after each model call. */
export interface StepInfo {
  /** 0-based index of the step that just finished. */
  readonly step: number;
  readonly steps: number;
  /** Timestep that step evaluated. */
  readonly t: number;
}

export interface SampleRequest {
  /** Conditional user rows [B, U]; B = seeds.length. */
  readonly users: Float32Array;
  /** The null user row [U], used by every unconditional row. */
  readonly nullUser: Float32Array;
  /** One uint32 seed per item; an item's noise depends only on its seed. */
  readonly seeds: readonly number[];
  /** Classifier-free guidance scale g (1 = conditional only, 0 = unconditional only). */
  readonly guidance: number;
  readonly sampler: SamplerName;
  /**
   * Number of sampler steps S = prior evaluations (each one batched CFG pair). 1..T; DDPM visits every
   * timestep as in the paper (and the Python reference), so only T is accepted.
   * @default T for "ddpm", min(50, T) otherwise
   */
  readonly steps?: number;
  /** Timestep grid of the S steps (ignored by DDPM, which visits all). @default "linspace" */
  readonly spacing?: TimestepSpacing;
  /** Checked between steps; an aborted signal rejects with its reason. */
  readonly signal?: AbortSignal;
  /** Called after every step; may be async (awaited before the next step). */
  readonly onStep?: (info: StepInfo) => void | Promise<void>;
}

const DEFAULT_STEPS = 50;

/** Samples embeddings [B, D] (float32). One model call of 2B rows per step. */
export async function sampleEmbeddings(model: PriorModel, config: SamplerConfig, request: SampleRequest): Promise<Float32Array> {
  const D = config.embeddingDim;
  const U = config.userDim;
  const ac = config.alphasCumprod;
  const T = ac.length;
  const B = request.seeds.length;
  const sampler = request.sampler;
  if (!(SAMPLER_NAMES as readonly string[]).includes(sampler)) {
    throw new RangeError(`unknown sampler ${String(sampler)} (expected one of ${SAMPLER_NAMES.join(", ")})`);
  }
  const S = request.steps ?? (sampler === "ddpm" ? T : Math.min(DEFAULT_STEPS, T));
  if (sampler === "ddpm" && S !== T) {
    throw new RangeError(`the DDPM sampler visits all ${T} timesteps; steps must be ${T} or omitted, got ${S}`);
  }
  if (B === 0) return new Float32Array(0);
  if (request.users.length !== B * U) {
    throw new RangeError(`users has ${request.users.length} values, expected ${B}×${U}`);
  }
  if (request.nullUser.length !== U) {
    throw new RangeError(`nullUser has ${request.nullUser.length} values, expected ${U}`);
  }
  if (!Number.isFinite(request.guidance)) throw new RangeError("guidance must be finite");
  const ts = spacedTimesteps(T, S, sampler === "ddpm" ? "linspace" : (request.spacing ?? "linspace"));
  const clip = config.clipX0;
  const rows = 2 * B;
  const n = B * D;

  // Inputs that do not change between steps are built once.
  const user = new Float32Array(rows * U);
  user.set(request.users, 0);
  for (let b = 0; b < B; b++) user.set(request.nullUser, (B + b) * U);
  const like = new BigInt64Array(rows);
  like.fill(BigInt(config.like ?? 1), 0, B);
  like.fill(BigInt(config.nullLike ?? 2), B, rows);
  const t = new BigInt64Array(rows);
  const xIn = new Float32Array(rows * D);

  const x = new Float64Array(n);
  for (let b = 0; b < B; b++) normalVector(request.seeds[b]!, 0, D, x, b * D);
  let x0 = new Float64Array(n);
  let x0Prev = new Float64Array(n);
  let hPrev = 0; // 0 while there is no previous x0 (DPM-Solver++ then steps first-order)
  const z = new Float64Array(n);
  const noise = (stream: number): Float64Array => {
    for (let b = 0; b < B; b++) normalVector(request.seeds[b]!, stream, D, z, b * D);
    return z;
  };

  for (let i = 0; i < S; i++) {
    throwIfAborted(request.signal);
    const ti = ts[i]!;
    const aT = ac[ti]!;
    const last = i + 1 === S;

    t.fill(BigInt(ti));
    // Float64Array → Float32Array set rounds to nearest float32, as torch's .float() does.
    xIn.set(x, 0);
    xIn.set(x, n);
    const out = await model.predictX0({ xT: xIn, t, user, like, rows });
    if (out.length !== rows * D) {
      throw new Error(`prior returned ${out.length} values, expected ${rows}×${D}`);
    }
    const g = request.guidance;
    for (let k = 0; k < n; k++) {
      const u = out[n + k]!;
      const v = u + g * (out[k]! - u);
      x0[k] = v > clip ? clip : v < -clip ? -clip : v;
    }

    if (last) {
      if (sampler === "ddpm") ddpmStep(x, x0, aT, 1, null);
      else x.set(x0);
    } else {
      const aP = ac[ts[i + 1]!]!;
      if (sampler === "ddim") ddimStep(x, x0, aT, aP);
      else if (sampler === "ddpm") ddpmStep(x, x0, aT, aP, noise(i + 1));
      else {
        hPrev = dpmSolverStep(x, x0, hPrev > 0 ? x0Prev : null, hPrev, aT, aP, sampler === "dpmpp_2m_sde" ? noise(i + 1) : null);
        [x0, x0Prev] = [x0Prev, x0];
      }
    }
    if (request.onStep) await request.onStep({ step: i, steps: S, t: ti });
  }
  return Float32Array.from(x);
}

/** DDIM (η = 0) from ᾱ = aT to ᾱ = aP, in place. */
function ddimStep(x: Float64Array, x0: Float64Array, aT: number, aP: number): void {
  const sa = Math.sqrt(aT);
  const s1a = Math.sqrt(1 - aT);
  const sp = Math.sqrt(aP);
  const s1p = Math.sqrt(1 - aP);
  for (let k = 0; k < x.length; k++) {
    const eps = (x[k]! - sa * x0[k]!) / s1a;
    x[k] = sp * x0[k]! + s1p * eps;
  }
}

/** Ancestral DDPM ("fixed small" variance) from ᾱ = aT to aP, in place; `z` null on the last step. */
function ddpmStep(x: Float64Array, x0: Float64Array, aT: number, aP: number, z: Float64Array | null): void {
  const beta = 1 - aT / aP;
  const cX0 = (Math.sqrt(aP) * beta) / (1 - aT);
  const cXt = (Math.sqrt(aT / aP) * (1 - aP)) / (1 - aT);
  const sigma = Math.sqrt(((1 - aP) / (1 - aT)) * beta);
  for (let k = 0; k < x.length; k++) {
    const mean = cX0 * x0[k]! + cXt * x[k]!;
    x[k] = z ? mean + sigma * z[k]! : mean;
  }
}

/**
 * One DPM-Solver++ step in λ = log(α/σ) (α = √ᾱ, σ = √(1−ᾱ)), in place; returns h = λ_next − λ_now.
 * Second order (midpoint) when the previous x0 and step size are given: D = x0 + h/(2h′)·(x0 − x0′).
 * ODE: x ← (σ′/σ)·x + α′(1 − e^{−h})·D; SDE (z given): x ← (σ′/σ)e^{−h}·x + α′(1 − e^{−2h})·D + σ′√(1 − e^{−2h})·z.
 */
function dpmSolverStep(x: Float64Array, x0: Float64Array, x0Prev: Float64Array | null, hPrev: number, aT: number, aP: number, z: Float64Array | null): number {
  const alT = Math.sqrt(aT);
  const siT = Math.sqrt(1 - aT);
  const alP = Math.sqrt(aP);
  const siP = Math.sqrt(1 - aP);
  const h = Math.log(alP / siP) - Math.log(alT / siT);
  const r = x0Prev ? h / (2 * hPrev) : 0;
  const cX = z ? (siP / siT) * Math.exp(-h) : siP / siT;
  const cD = z ? alP * -Math.expm1(-2 * h) : alP * -Math.expm1(-h);
  const cZ = z ? siP * Math.sqrt(-Math.expm1(-2 * h)) : 0;
  for (let k = 0; k < x.length; k++) {
    const d = x0Prev ? x0[k]! + r * (x0[k]! - x0Prev[k]!) : x0[k]!;
    x[k] = cX * x[k]! + cD * d + (z ? cZ * z[k]! : 0);
  }
  return h;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason ?? new DOMException("sampling aborted", "AbortError");
  }
}
