import type { SamplerName } from "@rebeca/contracts";
import type { PriorSampler, UserTable } from "@rebeca/inference";

export interface SampleJob {
  version: string;
  userId: string;
  unknownUser: "reject" | "population";
  seeds: number[];
  guidance: number;
  steps: number;
  sampler: SamplerName;
}

export type SampleOutcome = { kind: "ok"; embeddings: Float32Array; population: boolean } | { kind: "unknown-user" };

/** Where sampling happens: in-process (tests, tools) or on sampler threads (the worker). */
export interface PriorBackend {
  /** Model versions served, with their embedding dimension. */
  readonly versions: ReadonlyMap<string, { embeddingDim: number }>;
  sample(job: SampleJob, signal?: AbortSignal): Promise<SampleOutcome>;
  close(): Promise<void>;
}

/** One loaded model version. */
export interface LoadedPrior {
  sampler: PriorSampler;
  users: Pick<UserTable, "rowOf">;
}

/** Resolves the user and samples; shared by both backends so they cannot disagree. */
export async function sampleWith(model: LoadedPrior, job: SampleJob, signal?: AbortSignal): Promise<SampleOutcome> {
  const row = model.users.rowOf(job.userId);
  if (row === undefined && job.unknownUser === "reject") return { kind: "unknown-user" };
  const embeddings = await model.sampler.sample({
    userRow: row ?? null,
    seeds: job.seeds,
    guidance: job.guidance,
    steps: job.steps,
    sampler: job.sampler,
    ...(signal ? { signal } : {}),
  });
  return { kind: "ok", embeddings, population: row === undefined };
}

/** Samples on the calling thread. */
export function createInProcessBackend(models: Map<string, LoadedPrior>): PriorBackend {
  return {
    versions: new Map([...models].map(([v, m]) => [v, { embeddingDim: m.sampler.embeddingDim }])),
    sample: (job, signal) => {
      const model = models.get(job.version);
      if (!model) return Promise.reject(new Error(`model version ${job.version} is not loaded`));
      return sampleWith(model, job, signal);
    },
    close: async () => {},
  };
}
