import { imageSeed, objectKeys, type DecodeTask, type PriorTask } from "@rebeca/contracts";
import type { JobStore } from "@rebeca/jobstore";
import type { BlobStore } from "@rebeca/storage";
import { UnrecoverableError, type FairLanes, type Logger } from "@rebeca/platform";
import type { PriorBackend, SampleOutcome } from "./backend.js";

/** Where sampled jobs go next: the "decode" queue. */
export interface DecodeJobSink {
  add(task: DecodeTask): Promise<void>;
}

export interface PriorProcessorDeps {
  store: JobStore;
  backend: PriorBackend;
  blobs: BlobStore;
  decode: DecodeJobSink;
  log: Logger;
  /** Shares the sampler between tenants (weighted fair); without it samples run as they come. */
  lanes?: FairLanes;
  /** How often a running sample checks whether its job was cancelled. @default 250 */
  cancelCheckMs?: number;
  /** Observes rows per ONNX run and embeddings produced. */
  observe?: (batchRows: number, embeddings: number) => void;
}

/** Floats as little-endian bytes (the embedding object format). */
export function float32ToBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

/**
 * The prior stage: sample a job's embeddings, store them in S3 (Redis only carries the key),
 * move the job to DECODING and hand it to the decode queue. Safe to run twice for one job: a
 * redelivery resumes from the job's recorded state and never emits an event twice.
 */
export function createPriorProcessor(deps: PriorProcessorDeps) {
  const cancelCheckMs = deps.cancelCheckMs ?? 250;

  function decodeTask(task: PriorTask, dim: number): DecodeTask {
    return {
      tenant: task.tenant,
      jobId: task.jobId,
      modelVersion: task.modelVersion,
      embeddingsKey: objectKeys.embeddings(task.tenant, task.jobId),
      embeddingDim: dim,
      seeds: Array.from({ length: task.numImages }, (_, i) => imageSeed(task.seed, i)),
      priority: task.priority,
    };
  }

  /** Samples while polling the job's state, aborting if it leaves SAMPLING (a cancel). */
  async function sampleUnlessCancelled(task: PriorTask, seeds: number[]): Promise<SampleOutcome | null> {
    const abort = new AbortController();
    const timer = setInterval(() => {
      deps.store.get(task.jobId).then(
        (current) => {
          if (!current || current.state !== "sampling") abort.abort();
        },
        () => {}, // a failed check is not a cancel; the next one will tell
      );
    }, cancelCheckMs);
    const release = deps.lanes ? await deps.lanes.acquire(task.tenant, seeds.length) : () => {};
    try {
      return await deps.backend.sample(
        { version: task.modelVersion, userId: task.userId, unknownUser: task.unknownUser, seeds, guidance: task.guidance, steps: task.steps, sampler: task.sampler },
        abort.signal,
      );
    } catch (err) {
      if (abort.signal.aborted) return null;
      throw err;
    } finally {
      release();
      clearInterval(timer);
    }
  }

  return async function process(task: PriorTask): Promise<"done" | "skipped"> {
    const model = deps.backend.versions.get(task.modelVersion);
    if (!model) throw new UnrecoverableError(`model version ${task.modelVersion} is not loaded by this worker`);
    const next = decodeTask(task, model.embeddingDim);

    const started = await deps.store.transition(task.jobId, "sampling");
    if (!started.applied) {
      const state = started.record.state;
      // Sampled before a crash: only the hand-off may be missing (BullMQ ignores a repeat add).
      if (state === "decoding") {
        await deps.decode.add(next);
        return "done";
      }
      if (state !== "sampling") return "skipped"; // cancelled or finished
    }

    const outcome = await sampleUnlessCancelled(task, next.seeds);
    if (!outcome) return "skipped";
    if (outcome.kind === "unknown-user") {
      await deps.store.transition(task.jobId, "failed", {
        error: { code: "UNKNOWN_USER", message: `user ${task.userId} is not in model ${task.modelVersion}; send unknown_user=POPULATION to serve the population prior` },
      });
      return "done";
    }
    deps.observe?.(next.seeds.length * 2, next.seeds.length);

    await deps.blobs.put(next.embeddingsKey, float32ToBytes(outcome.embeddings), "application/octet-stream");
    const moved = await deps.store.transition(task.jobId, "decoding", { populationPrior: outcome.population }, started.record);
    if (!moved.applied && moved.record.state !== "decoding") return "skipped";
    await deps.decode.add(next);
    return "done";
  };
}
