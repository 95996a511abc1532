import { encodeEmbeddings, imageSeed, objectKeys, toInlineEmbeddings, type DecodeTask, type JobSink, type PriorTask } from "@rebeca/contracts";
import { expireIfLate, type JobStore } from "@rebeca/jobstore";
import type { BlobStore } from "@rebeca/storage";
import { nextTraceparent, UnrecoverableError, type Logger } from "@rebeca/platform";
import { sampleWhile, type SamplingDeps } from "./sampling.js";

export interface PriorProcessorDeps extends SamplingDeps {
  store: JobStore;
  blobs: BlobStore;
  /** Where sampled jobs go next (`decode` jobs). */
  jobs: Pick<JobSink, "add">;
  log: Logger;
  /** Embeddings up to this many bytes travel inline in the decode task instead of via S3. @default 16384 */
  inlineEmbeddingsMaxBytes?: number;
  /** Counts the embeddings handed on (sampler calls are observed where they run: the batcher). */
  countEmbeddings?: (embeddings: number) => void;
}

/**
 * The prior stage of a job: sample its embeddings, store them in S3 (Redis only carries the key),
 * move the job to DECODING and hand it to the decode queue. Safe to run twice for one job: a
 * redelivery resumes from the job's recorded state and never emits an event twice.
 */
export function createPriorProcessor(deps: PriorProcessorDeps) {
  function decodeTask(task: PriorTask, dim: number): DecodeTask {
    return {
      tenant: task.tenant,
      jobId: task.jobId,
      modelVersion: task.modelVersion,
      embeddingsKey: objectKeys.embeddings(task.tenant, task.jobId),
      embeddingDim: dim,
      seeds: Array.from({ length: task.numImages }, (_, i) => imageSeed(task.seed, i)),
      priority: task.priority,
      traceparent: nextTraceparent(task.traceparent),
    };
  }

  return async function sample(task: PriorTask): Promise<"done" | "skipped"> {
    await deps.backend.ensure?.(task.modelVersion);
    const model = deps.backend.versions.get(task.modelVersion);
    if (!model) throw new UnrecoverableError(`model version ${task.modelVersion} is not loaded by this worker`);
    const next = decodeTask(task, model.embeddingDim);
    if (await expireIfLate(deps.store, task.jobId, task)) return "skipped"; // past its deadline: EXPIRED, not sampled

    const started = await deps.store.transition(task.jobId, "sampling");
    // Already DECODING: sampled before a crash, and only the hand-off may be missing. Sampling is
    // deterministic, so it is redone to carry the same embeddings (BullMQ ignores a repeat add).
    const handOffOnly = !started.applied && started.record.state === "decoding";
    if (!started.applied && !handOffOnly && started.record.state !== "sampling") return "skipped"; // cancelled or finished

    const wantedState = handOffOnly ? "decoding" : "sampling";
    const stillSampling = async () => (await deps.store.get(task.jobId))?.state === wantedState;
    const outcome = await sampleWhile(deps, task.tenant, stillSampling, {
      version: task.modelVersion,
      userIds: next.seeds.map(() => task.userId),
      seeds: next.seeds,
      unknownUser: task.unknownUser,
      guidance: task.guidance,
      steps: task.steps,
      sampler: task.sampler,
      spacing: task.spacing,
    });
    if (!outcome) return "skipped";
    if (outcome.rejected.length > 0) {
      await deps.store.transition(task.jobId, "failed", {
        error: {
          code: "UNKNOWN_USER",
          message: `user ${task.userId} is not in model ${task.modelVersion}; send unknown_user=POPULATION to serve the population prior`,
        },
      });
      return "done";
    }
    deps.countEmbeddings?.(next.seeds.length);

    const bytes = encodeEmbeddings(outcome.embeddings);
    // Small embeddings ride along (the decoder stores them with the images): one S3 write fewer
    // on the CPU stage's path. Large ones go to S3 now so Redis never carries them.
    if (bytes.byteLength <= (deps.inlineEmbeddingsMaxBytes ?? 16_384)) next.embeddings = toInlineEmbeddings(bytes);
    else await deps.blobs.put(next.embeddingsKey, bytes, "application/octet-stream");
    if (!handOffOnly) {
      const moved = await deps.store.transition(task.jobId, "decoding", { populationPrior: outcome.population[0] ?? false }, started.record);
      if (!moved.applied && moved.record.state !== "decoding") return "skipped";
    }
    await deps.jobs.add("decode", next);
    return "done";
  };
}
