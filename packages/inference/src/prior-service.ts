/**
 * High-level prior sampling: resolves users against the user table and fills in manifest defaults.
 */
import type { PriorManifest, UserTable } from "./manifest.js";
import { sampleEmbeddings, type PriorModel, type SamplerName, type StepInfo } from "./sampler.js";
import type { TimestepSpacing } from "./schedule.js";

export interface PriorSamplerDeps {
  readonly model: PriorModel;
  readonly userTable: UserTable;
  readonly manifest: PriorManifest;
}

export interface PriorSampleRequest {
  /**
   * User-table row per item: one value for every seed or one per seed. `null` samples the
   * population (null user row with like = 1: images liked by the platform at large).
   */
  readonly userRow: number | null | readonly (number | null)[];
  /** One uint32 seed per item. */
  readonly seeds: readonly number[];
  /** CFG scale. @default manifest.defaults.guidance */
  readonly guidance?: number;
  /** @default manifest.defaults.steps, T for DDPM */
  readonly steps?: number;
  /** @default manifest.defaults.sampler */
  readonly sampler?: SamplerName;
  /** @default manifest.defaults.spacing, else "linspace" */
  readonly spacing?: TimestepSpacing;
  readonly signal?: AbortSignal;
  readonly onStep?: (info: StepInfo) => void | Promise<void>;
}

export interface PriorSampler {
  /** Embedding dimension D of the returned rows. */
  readonly embeddingDim: number;
  /** Embeddings [seeds.length, D]. */
  sample(request: PriorSampleRequest): Promise<Float32Array>;
}

export function createPriorSampler({ model, userTable, manifest }: PriorSamplerDeps): PriorSampler {
  const D = manifest.embedding_dim;
  const U = manifest.user_dim;
  if (userTable.dim !== U) throw new RangeError(`user table dim ${userTable.dim} ≠ manifest user_dim ${U}`);
  const config = {
    alphasCumprod: Float64Array.from(manifest.schedule.alphas_cumprod),
    embeddingDim: D,
    userDim: U,
    clipX0: manifest.clip_x0,
    like: manifest.like,
    nullLike: manifest.null_like,
  };
  const T = manifest.schedule.timesteps;
  return {
    embeddingDim: D,
    sample(req) {
      const B = req.seeds.length;
      const rows = Array.isArray(req.userRow) ? (req.userRow as readonly (number | null)[]) : null;
      if (rows && rows.length !== B) {
        throw new RangeError(`userRow has ${rows.length} entries for ${B} seeds`);
      }
      const users = new Float32Array(B * U);
      for (let b = 0; b < B; b++) {
        const r = rows ? rows[b]! : (req.userRow as number | null);
        users.set(r === null ? userTable.nullUser() : userTable.row(r), b * U);
      }
      const sampler = req.sampler ?? manifest.defaults.sampler;
      const steps = req.steps ?? (sampler === "ddpm" ? T : Math.min(manifest.defaults.steps, T));
      return sampleEmbeddings(model, config, {
        users,
        nullUser: userTable.nullUser(),
        seeds: req.seeds,
        guidance: req.guidance ?? manifest.defaults.guidance,
        sampler,
        steps,
        spacing: req.spacing ?? manifest.defaults.spacing ?? "linspace",
        ...(req.signal ? { signal: req.signal } : {}),
        ...(req.onStep ? { onStep: req.onStep } : {}),
      });
    },
  };
}
