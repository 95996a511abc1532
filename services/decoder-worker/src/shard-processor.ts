import { createHash } from "node:crypto";
import {
  batchImageSeed,
  objectKeys,
  positionOf,
  type DecodeShardTask,
  type UserResult,
  type JobSink,
  decodeEmbeddings,
  deadlinePassed,
  webhookBody,
} from "@rebeca/contracts";
import type { BatchStore } from "@rebeca/jobstore";
import { encodePng, imageAt } from "@rebeca/inference";
import type { BlobStore } from "@rebeca/storage";
import { countShard, nextTraceparent, UnrecoverableError, type FairLanes } from "@rebeca/platform";
import { runChunks, type ShardProgress } from "./shard-chunks.js";
import type { LoadedDecoder } from "./processor.js";
import { usageOfOutputs, type UsageRecord, type UserIndex } from "@rebeca/userdata";

export interface ShardDecodeDeps {
  batches: BatchStore;
  decoders: Map<string, LoadedDecoder>;
  /** Adds a published version's decoder to `decoders` before its shard is taken (absent: embedded versions only). */
  ensureDecoder?: (version: string) => Promise<void>;
  blobs: BlobStore;
  /** The store as seen by one tenant (fair upload lanes); default: `blobs` for everyone. */
  blobsFor?: (tenant: string) => BlobStore;
  lanes?: FairLanes;
  /** Where the batch's finalize step goes once its last shard is counted. */
  jobs: Pick<JobSink, "add">;
  /** Images decoded per decoder call: the grain at which tenants take turns and progress is recorded. @default 32 */
  chunkImages?: number;
  /** Parallel uploads per shard. @default 16 */
  uploadConcurrency?: number;
  observe?: (images: number) => void;
  /** The record of a shard's finished chunks (spot-safe resume); default: kept in memory, lost with the process. */
  progressOf?: (batchId: string, shard: number) => ShardProgress<StoredImage> & { clear(): Promise<void> };
  /** Asked between chunks; a reason stops the shard there and hands it back (see `runChunks`). */
  shouldStop?: () => string | undefined;
  /** Per shard run: images taken from the progress record and images decoded now. */
  onChunks?: (n: { resumedImages: number; decodedImages: number }) => void;
  /** Indexes each user's outputs for erasure (DeleteUserData); recorded before they are written. */
  userIndex?: Pick<UserIndex, "recordBatchOutputs">;
  /** Per-tenant usage (images, embeddings, bytes stored). */
  usage?: UsageRecord;
  /** zlib level of the PNGs (PNG_LEVEL). @default 9, encodePng's */
  pngLevel?: number;
}

/** One stored image of a batch user, as its result line lists it. */
type StoredImage = NonNullable<UserResult["images"]>[number];

function inMemoryProgress<T>(): ShardProgress<T> & { clear(): Promise<void> } {
  const records = new Map<number, T[]>();
  return { finished: async () => records, record: async (start, out) => void records.set(start, out), clear: async () => records.clear() };
}

/** Runs `fn` over items with at most `limit` in flight. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/**
 * The decode stage of a batch shard: decodes every served user's images (in chunks, in the
 * tenant's fair share), uploads them under position-keyed deterministic keys, writes the shard's
 * result lines and counts the shard into its batch once. The stage that counts the last shard
 * enqueues the batch's finalize step. Past the batch's deadline no further chunk starts: the users
 * whose images were all decoded are kept and listed, the rest count as expired (no line, no object).
 * Progress is recorded per chunk, so a killed worker's successor resumes after the last one stored.
 */
export function createShardDecodeProcessor(deps: ShardDecodeDeps) {
  const chunkImages = deps.chunkImages ?? 32;

  return async function decodeShard(task: DecodeShardTask): Promise<"done" | "skipped"> {
    await deps.ensureDecoder?.(task.spec.modelVersion);
    const loaded = deps.decoders.get(task.spec.modelVersion);
    if (!loaded) throw new UnrecoverableError(`no decoder for model version ${task.spec.modelVersion} in this worker`);
    const blobs = deps.blobsFor?.(task.tenant) ?? deps.blobs;
    const step = await deps.batches.shardStep(task.batchId, task.shard, "decoding");
    if (step === "done" || step === "missing") {
      // Counted already; a crash may have come before the finalize hand-off, which is idempotent.
      const current = await deps.batches.get(task.batchId);
      if (current && current.counts.shardsDone === current.counts.shardsTotal && current.state === "running")
        await deps.jobs.add("finalizeBatch", { tenant: task.tenant, batchId: task.batchId });
      return "skipped";
    }
    if (step === "stopped") {
      await countShard(deps, task, { succeeded: 0, failed: 0, cancelled: task.userIds.length });
      return "skipped";
    }

    const k = task.spec.numImages;
    const failedAt = new Map(task.failed.map((f) => [f.position, f]));
    const served = task.userIds.map((userId, j) => ({ userId, position: positionOf(task, j) })).filter((u) => !failedAt.has(u.position));
    await deps.userIndex?.recordBatchOutputs(
      task.tenant,
      task.batchId,
      task.shard,
      task.userIds.map((user_id, j) => ({ user_id, position: positionOf(task, j) })),
    );
    const embeddings = decodeEmbeddings(await blobs.get(task.embeddingsKey));
    const total = served.length * k;
    if (embeddings.length !== total * task.embeddingDim)
      throw new UnrecoverableError(`shard embeddings hold ${embeddings.length} values, expected ${total}×${task.embeddingDim}`);

    // Chunk by chunk: decode (in the tenant's fair share), encode, upload, record. A successor of a
    // killed worker resumes after the recorded chunks (deterministic keys: a redone chunk overwrites).
    const progress = deps.progressOf?.(task.batchId, task.shard) ?? inMemoryProgress<StoredImage>();
    const { outputs: uploaded, resumedImages } = await runChunks<StoredImage>({
      total,
      chunkImages,
      progress,
      shouldStop: deps.shouldStop,
      endEarly: () => deadlinePassed(task.spec),
      run: async (start, count) => {
        const release = deps.lanes ? await deps.lanes.acquire(task.tenant, count) : () => {};
        let decoded;
        try {
          if (deadlinePassed(task.spec)) return null; // the lane came free after the deadline: start nothing
          // Image n is (user n / k, index n % k): the same seed the prior drew its embedding with.
          const seeds = Array.from({ length: count }, (_, i) => batchImageSeed(task.spec.seed, served[Math.floor((start + i) / k)]!.position, (start + i) % k));
          decoded = await loaded.decoder.decode(embeddings.subarray(start * task.embeddingDim, (start + count) * task.embeddingDim), count, seeds);
        } finally {
          release();
        }
        // PNG encoding and uploads are outside the lane: the lane is the model's, and another tenant may be waiting.
        const stored = await mapLimit(
          Array.from({ length: count }, (_, i) => i),
          deps.uploadConcurrency ?? 16,
          async (i) => {
            const n = start + i;
            const user = served[Math.floor(n / k)]!;
            const index = n % k;
            const png = encodePng(imageAt(decoded, i), { level: deps.pngLevel });
            const uri = await blobs.put(objectKeys.batchImage(task.tenant, task.batchId, user.position, index), png, "image/png");
            return {
              uri,
              sha256: createHash("sha256").update(png).digest("hex"),
              bytes: png.byteLength,
              width: decoded.width,
              height: decoded.height,
              seed: batchImageSeed(task.spec.seed, user.position, index),
            };
          },
        );
        deps.observe?.(count);
        return stored;
      },
    });
    deps.onChunks?.({ resumedImages, decodedImages: uploaded.length - resumedImages });
    // A deadline stop may split a user's images between chunks: only whole users are kept, and the
    // images of a user cut short are deleted (an expired user has no object and no line).
    const done = Math.floor(uploaded.length / k);
    const partial = uploaded.splice(done * k).map((_, i) => {
      const n = done * k + i;
      return objectKeys.batchImage(task.tenant, task.batchId, served[Math.floor(n / k)]!.position, n % k);
    });
    if (partial.length) await blobs.deleteMany(partial);
    deps.usage?.(task.tenant, usageOfOutputs(uploaded));

    const servedIndex = new Map(served.map((u, s) => [u.position, s]));
    const lines: UserResult[] = task.userIds.flatMap((userId, j): UserResult[] => {
      const position = positionOf(task, j);
      const failure = failedAt.get(position);
      const model_version = task.spec.modelVersion;
      if (failure) return [{ user_id: userId, position, error: { code: failure.code, message: failure.message }, model_version }];
      const s = servedIndex.get(position)!;
      return s < done ? [{ user_id: userId, position, images: uploaded.slice(s * k, (s + 1) * k), model_version }] : [];
    });
    await blobs.put(
      objectKeys.shardResult(task.tenant, task.batchId, task.shard),
      Buffer.from(lines.map((l) => JSON.stringify(l)).join("\n") + "\n"),
      "application/x-ndjson",
    );
    // Per-user callbacks, when the batch asked for them, go out before the shard is counted: a
    // crash in between repeats them (same ids, dropped by the notifier), never loses them.
    const wanted = new Set(task.spec.callbackUrl ? task.spec.callbackEvents.filter((t) => t.startsWith("user.")) : []);
    const time = new Date().toISOString();
    await deps.batches.addUserCallbacks(
      task.tenant,
      task.spec.callbackUrl,
      lines
        .map((l) => ({ line: l, type: l.error ? "user.failed" : "user.succeeded" }))
        .filter(({ type }) => wanted.has(type))
        .map(({ line, type }) => ({
          eventId: `${task.batchId}-u${line.position}-${type}`,
          type,
          body: webhookBody(type, time, { batch_id: task.batchId, ...line }),
        })),
      task.traceparent ? nextTraceparent(task.traceparent) : "",
    );
    await countShard(deps, task, { succeeded: done, failed: failedAt.size, cancelled: 0, expired: served.length - done });
    await progress.clear();
    return "done";
  };
}
