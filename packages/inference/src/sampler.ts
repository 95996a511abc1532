/**
 * DDIM (η = 0) and DDPM ("fixed small" variance) samplers with classifier-free guidance on an
 * x0-predicting prior (docs/model-format.md, "Samplers"). Pure: the model is a role interface,
 * state is float64, and the model sees float32 exactly as the Python reference does.
 */
import { normalVector } from './rng.js';
import { timesteps as spacedTimesteps } from './schedule.js';

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

export type SamplerName = 'ddim' | 'ddpm';

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
   * Number of sampler steps S. DDIM: 1..T. DDPM visits every timestep as in the paper (and the
   * Python reference), so only T is accepted. @default T for "ddpm", min(50, T) for "ddim"
   */
  readonly steps?: number;
  /** Checked between steps; an aborted signal rejects with its reason. */
  readonly signal?: AbortSignal;
  /** Called after every step; may be async (awaited before the next step). */
  readonly onStep?: (info: StepInfo) => void | Promise<void>;
}

const DEFAULT_DDIM_STEPS = 50;

/** Samples embeddings [B, D] (float32). One model call of 2B rows per step. */
export async function sampleEmbeddings(
  model: PriorModel,
  config: SamplerConfig,
  request: SampleRequest,
): Promise<Float32Array> {
  const D = config.embeddingDim;
  const U = config.userDim;
  const ac = config.alphasCumprod;
  const T = ac.length;
  const B = request.seeds.length;
  const S = request.steps ?? (request.sampler === 'ddpm' ? T : Math.min(DEFAULT_DDIM_STEPS, T));
  if (request.sampler !== 'ddim' && request.sampler !== 'ddpm') {
    throw new RangeError(`unknown sampler ${String(request.sampler)}`);
  }
  if (request.sampler === 'ddpm' && S !== T) {
    throw new RangeError(`the DDPM sampler visits all ${T} timesteps; steps must be ${T} or omitted, got ${S}`);
  }
  if (B === 0) return new Float32Array(0);
  if (request.users.length !== B * U) {
    throw new RangeError(`users has ${request.users.length} values, expected ${B}×${U}`);
  }
  if (request.nullUser.length !== U) {
    throw new RangeError(`nullUser has ${request.nullUser.length} values, expected ${U}`);
  }
  if (!Number.isFinite(request.guidance)) throw new RangeError('guidance must be finite');
  const ts = spacedTimesteps(T, S);
  const clip = config.clipX0;
  const rows = 2 * B;

  // Inputs that do not change between steps are built once.
  const user = new Float32Array(rows * U);
  user.set(request.users, 0);
  for (let b = 0; b < B; b++) user.set(request.nullUser, (B + b) * U);
  const like = new BigInt64Array(rows);
  like.fill(BigInt(config.like ?? 1), 0, B);
  like.fill(BigInt(config.nullLike ?? 2), B, rows);
  const t = new BigInt64Array(rows);
  const xIn = new Float32Array(rows * D);

  const x = new Float64Array(B * D);
  for (let b = 0; b < B; b++) normalVector(request.seeds[b]!, 0, D, x, b * D);
  const x0 = new Float64Array(B * D);
  const z = new Float64Array(D);

  for (let i = 0; i < S; i++) {
    throwIfAborted(request.signal);
    const ti = ts[i]!;
    const aT = ac[ti]!;
    const aP = i + 1 < S ? ac[ts[i + 1]!]! : 1;
    const last = i + 1 === S;

    t.fill(BigInt(ti));
    // Float64Array → Float32Array set rounds to nearest float32, as torch's .float() does.
    xIn.set(x, 0);
    xIn.set(x, B * D);
    const out = await model.predictX0({ xT: xIn, t, user, like, rows });
    if (out.length !== rows * D) {
      throw new Error(`prior returned ${out.length} values, expected ${rows}×${D}`);
    }
    const g = request.guidance;
    for (let k = 0; k < B * D; k++) {
      const u = out[B * D + k]!;
      const v = u + g * (out[k]! - u);
      x0[k] = v > clip ? clip : v < -clip ? -clip : v;
    }

    if (request.sampler === 'ddim') {
      const sa = Math.sqrt(aT);
      const s1a = Math.sqrt(1 - aT);
      const sp = Math.sqrt(aP);
      const s1p = Math.sqrt(1 - aP);
      for (let k = 0; k < B * D; k++) {
        const eps = (x[k]! - sa * x0[k]!) / s1a;
        x[k] = sp * x0[k]! + s1p * eps;
      }
    } else {
      const beta = 1 - aT / aP;
      const cX0 = (Math.sqrt(aP) * beta) / (1 - aT);
      const cXt = (Math.sqrt(aT / aP) * (1 - aP)) / (1 - aT);
      const sigma = Math.sqrt(((1 - aP) / (1 - aT)) * beta);
      for (let b = 0; b < B; b++) {
        if (!last) normalVector(request.seeds[b]!, i + 1, D, z, 0);
        for (let d = 0; d < D; d++) {
          const k = b * D + d;
          const mean = cX0 * x0[k]! + cXt * x[k]!;
          x[k] = last ? mean : mean + sigma * z[d]!;
        }
      }
    }
    if (request.onStep) await request.onStep({ step: i, steps: S, t: ti });
  }
  return Float32Array.from(x);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason ?? new DOMException('sampling aborted', 'AbortError');
  }
}
