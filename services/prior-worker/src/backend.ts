import type { SamplerName, SpacingName } from "@rebeca/contracts";
import type { PriorSampler, UserTable } from "@rebeca/inference";

/** Items to sample: item i is for user `userIds[i]` with noise seed `seeds[i]`. */
export interface SampleJob {
  version: string;
  userIds: string[];
  seeds: number[];
  unknownUser: "reject" | "population";
  guidance: number;
  steps: number;
  sampler: SamplerName;
  /** @default "linspace" */
  spacing?: SpacingName;
}

export interface SampleOutcome {
  /** Rows [served.length, D], in the order of `served`. */
  embeddings: Float32Array;
  /** Indices of the items that were sampled. */
  served: number[];
  /** Per served item: the user was unknown and the population prior served it. */
  population: boolean[];
  /** Indices of items whose user is unknown under the "reject" policy (not sampled). */
  rejected: number[];
}

/** Where sampling happens: on sampler threads in the worker (threaded-backend.ts); fakes in tests. */
export interface PriorBackend {
  /** Model versions served, with their embedding dimension. */
  readonly versions: ReadonlyMap<string, { embeddingDim: number }>;
  /**
   * Makes a published version servable (fetched, verified, added to `versions`) before a job of it
   * is taken; a refused or unknown version stays out of `versions`. Absent: embedded versions only.
   */
  ensure?(version: string): Promise<void>;
  sample(job: SampleJob, signal?: AbortSignal): Promise<SampleOutcome>;
  close(): Promise<void>;
}

/** One loaded model version. */
export interface LoadedPrior {
  sampler: PriorSampler;
  users: Pick<UserTable, "rowOf">;
  /** Frees the ONNX session (the version left the bounded cache). */
  release?: () => Promise<void>;
}

/** Resolves users and samples the servable items in one batch (what a sampler thread runs). */
export async function sampleWith(model: LoadedPrior, job: SampleJob, signal?: AbortSignal): Promise<SampleOutcome> {
  if (job.userIds.length !== job.seeds.length) throw new RangeError(`${job.userIds.length} users for ${job.seeds.length} seeds`);
  const served: number[] = [];
  const rows: (number | null)[] = [];
  const rejected: number[] = [];
  job.userIds.forEach((userId, i) => {
    const row = model.users.rowOf(userId);
    if (row === undefined && job.unknownUser === "reject") rejected.push(i);
    else {
      served.push(i);
      rows.push(row ?? null);
    }
  });
  const embeddings =
    served.length === 0
      ? new Float32Array(0)
      : await model.sampler.sample({
          userRow: rows,
          seeds: served.map((i) => job.seeds[i]!),
          guidance: job.guidance,
          steps: job.steps,
          sampler: job.sampler,
          spacing: job.spacing ?? "linspace",
          ...(signal ? { signal } : {}),
        });
  return { embeddings, served, population: rows.map((r) => r === null), rejected };
}
