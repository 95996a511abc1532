import {
  batchImageSeed,
  deadlinePassed,
  encodeEmbeddings,
  JOB_ERROR_CODES,
  objectKeys,
  positionOf,
  type DecodeShardTask,
  type JobSink,
  type ShardTask,
} from "@rebeca/contracts";
import type { BatchStore } from "@rebeca/jobstore";
import type { BlobStore } from "@rebeca/storage";
import { countShard, nextTraceparent, UnrecoverableError } from "@rebeca/platform";
import { sampleWhile, type SamplingDeps } from "./sampling.js";

export interface ShardProcessorDeps extends SamplingDeps {
  batches: BatchStore;
  blobs: BlobStore;
  /** Where sampled shards go next (`decodeShard`), and a batch's finalize step. */
  jobs: Pick<JobSink, "add">;
  /** Users sampled per sampler call, at least: the grain of fair sharing between tenants. @default 64 */
  chunkUsers?: number;
  /**
   * Work (images × evaluations) a call may grow to beyond `chunkUsers`: with few evaluations per
   * image a call of `chunkUsers` is mostly fixed cost, so it takes more users while it stays
   * within this (the same bound as merged job calls). @default 0 (`chunkUsers` only)
   */
  chunkWork?: number;
  /** Waits while the tenant's decode backlog is past its bound (backpressure). */
  holdBack?: (tenant: string) => Promise<void>;
  /** Counts the embeddings sampled (sampler calls are observed where they run: the batcher). */
  countEmbeddings?: (embeddings: number) => void;
  /** Which of the users the tenant erased (DeleteUserData): the model no longer knows them. */
  erased?: (tenant: string, userIds: readonly string[]) => Promise<unknown[]>;
}

/**
 * The prior stage of a batch shard: samples every user's images in chunks (each one ONNX pass per
 * step, in the tenant's fair share), stores the shard's embeddings in one S3 object and hands the
 * shard to the decode stage. Unknown users under "reject" travel on as failures. A shard of a
 * cancelled batch is counted as cancelled and skipped; one whose batch deadline passes before it
 * is sampled (checked between chunks) is counted as expired and goes no further.
 */
/** Users per sampler call of a shard: `minUsers`, or as many as keep the call's work within `maxWork`. */
export function usersPerCall(numImages: number, steps: number, minUsers: number, maxWork: number): number {
  return Math.max(minUsers, Math.floor(maxWork / (numImages * Math.max(1, steps))));
}

export function createShardProcessor(deps: ShardProcessorDeps) {
  return async function processShard(task: ShardTask): Promise<"done" | "skipped"> {
    await deps.backend.ensure?.(task.spec.modelVersion);
    const model = deps.backend.versions.get(task.spec.modelVersion);
    if (!model) throw new UnrecoverableError(`model version ${task.spec.modelVersion} is not loaded by this worker`);
    const step = await deps.batches.shardStep(task.batchId, task.shard, "sampling");
    if (step === "stopped") {
      await countShard(deps, task, { succeeded: 0, failed: 0, cancelled: task.userIds.length });
      return "skipped";
    }
    if (step !== "ok") return "skipped";
    await deps.holdBack?.(task.tenant);

    const k = task.spec.numImages;
    const D = model.embeddingDim;
    const chunkUsers = usersPerCall(k, task.spec.steps, deps.chunkUsers ?? 64, deps.chunkWork ?? 0);
    // An erased user is sampled without a user row (""): unknown to the model, so the batch's
    // unknown_user policy applies (refused as USER_ERASED, or the population prior).
    const forgotten = new Set((await deps.erased?.(task.tenant, task.userIds))?.flatMap((mode, i) => (mode ? [task.userIds[i]!] : [])));
    const rows: Float32Array[] = [];
    const failed: DecodeShardTask["failed"] = [];
    const stillWanted = async () => !deadlinePassed(task.spec) && (await deps.batches.shardStep(task.batchId, task.shard, "sampling")) === "ok";
    for (let start = 0; start < task.userIds.length; start += chunkUsers) {
      if (deadlinePassed(task.spec)) {
        await countShard(deps, task, { succeeded: 0, failed: 0, cancelled: 0, expired: task.userIds.length });
        return "skipped";
      }
      const users = task.userIds.slice(start, start + chunkUsers);
      const userIds = users.flatMap((u) => Array<string>(k).fill(forgotten.has(u) ? "" : u));
      const seeds = users.flatMap((_, j) => Array.from({ length: k }, (_, i) => batchImageSeed(task.spec.seed, positionOf(task, start + j), i)));
      const outcome = await sampleWhile(deps, task.tenant, stillWanted, {
        version: task.spec.modelVersion,
        userIds,
        seeds,
        unknownUser: task.spec.unknownUser,
        guidance: task.spec.guidance,
        steps: task.spec.steps,
        sampler: task.spec.sampler,
        spacing: task.spec.spacing,
      });
      if (!outcome) {
        // The batch was cancelled (or its deadline passed) while this shard sampled.
        const n = task.userIds.length;
        await countShard(
          deps,
          task,
          deadlinePassed(task.spec) ? { succeeded: 0, failed: 0, cancelled: 0, expired: n } : { succeeded: 0, failed: 0, cancelled: n },
        );
        return "skipped";
      }
      const rejectedUsers = new Set(outcome.rejected.map((i) => Math.floor(i / k)));
      for (const j of rejectedUsers)
        failed.push(
          forgotten.has(users[j]!)
            ? { position: positionOf(task, start + j), code: JOB_ERROR_CODES.USER_ERASED, message: "the user's data was erased (DeleteUserData)" }
            : { position: positionOf(task, start + j), code: "UNKNOWN_USER", message: `user ${users[j]} is not in model ${task.spec.modelVersion}` },
        );
      rows.push(outcome.embeddings);
      deps.countEmbeddings?.(outcome.served.length);
    }
    const embeddings = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
    let offset = 0;
    for (const r of rows) {
      embeddings.set(r, offset);
      offset += r.length;
    }
    const embeddingsKey = objectKeys.shardEmbeddings(task.tenant, task.batchId, task.shard);
    await deps.blobs.put(embeddingsKey, encodeEmbeddings(embeddings), "application/octet-stream");
    if ((await deps.batches.shardStep(task.batchId, task.shard, "decoding")) === "done") return "skipped";
    // A stopped batch still goes on to the decode stage, which counts the shard as cancelled.
    await deps.jobs.add("decodeShard", { ...task, traceparent: nextTraceparent(task.traceparent), embeddingsKey, embeddingDim: D, failed });
    return "done";
  };
}
