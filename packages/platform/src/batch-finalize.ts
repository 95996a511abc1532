/**
 * A batch's last step, shared by the decoder worker (which runs it when the last shard is counted)
 * and the deadline reaper (which runs it for a batch whose remaining shards it took out of the
 * queues, so an EXPIRED batch gets its manifest even when no decoder runs).
 */
import { DEFAULT_BATCH_CALLBACK_EVENTS, objectKeys, type BatchRecord, type FinalizeTask } from "@rebeca/contracts";
import { inOrder } from "./ordered-reads.js";
import { mergeByPosition } from "./merge-by-position.js";

/** What finalizing needs from the batch store (`BatchStore.get` and `finish`). */
export interface BatchFinisher {
  get(batchId: string): Promise<BatchRecord | null>;
  finish(record: BatchRecord, to: "completed" | "expired", extra: { manifest?: string }, defaults?: readonly string[]): Promise<boolean>;
}

/** What finalizing needs from the object store: shard results in, the manifest out. */
export interface ManifestBlobs {
  get(key: string): Promise<Uint8Array>;
  putStream(key: string, chunks: AsyncIterable<Uint8Array>, contentType: string): Promise<string>;
}

/**
 * The batch's last step: concatenate the shard results, in order, into the result manifest
 * (JSON Lines: user → image URIs, or error) and complete the batch. Idempotent: a repeat rewrites
 * the same manifest and the batch completes once. Shards of a cancelled batch that never ran have
 * no result and are left out; the batch stays CANCELLED with the manifest of what completed.
 */
export function createFinalizeProcessor(deps: { batches: BatchFinisher; blobs: ManifestBlobs; readConcurrency?: number }) {
  return async function finalize(task: FinalizeTask): Promise<"done" | "skipped"> {
    const batch = await deps.batches.get(task.batchId);
    if (!batch || batch.state === "completed" || batch.state === "failed" || batch.state === "expired" || (batch.state === "cancelled" && batch.endTime))
      return "skipped";
    const readShard = async (i: number) => {
      try {
        return await deps.blobs.get(objectKeys.shardResult(task.tenant, task.batchId, i));
      } catch (err) {
        if ((err as Error).name === "BlobNotFoundError") return new Uint8Array(0);
        throw err;
      }
    };
    // Streamed in shard order with a few reads ahead: a 10M-user manifest (GBs) never sits in memory.
    // A canary batch's block b is shards 2b (stable users) and 2b+1 (candidate users): merged back into position order.
    const parts = batch.spec.canary
      ? inOrder(batch.counts.shardsTotal / 2, deps.readConcurrency ?? 16, async (b) => mergeByPosition(await readShard(2 * b), await readShard(2 * b + 1)))
      : inOrder(batch.counts.shardsTotal, deps.readConcurrency ?? 16, readShard);
    const uri = await deps.blobs.putStream(objectKeys.batchManifest(task.tenant, task.batchId), parts, "application/x-ndjson");
    // On a cancelled batch this only records the manifest and end time (it stays CANCELLED). Users
    // left undone by the deadline make it EXPIRED: the manifest then lists what was done.
    await deps.batches.finish(batch, batch.counts.expired > 0 ? "expired" : "completed", { manifest: uri }, DEFAULT_BATCH_CALLBACK_EVENTS);
    return "done";
  };
}
