import type { BatchStore } from "./batches.js";
import type { JobStore } from "./store.js";

/**
 * Records that a stage gave up on a job (retries exhausted or unrecoverable), so clients see
 * FAILED with a code instead of a job stuck in its last state. Payloads too broken to name a job
 * have nothing to record.
 */
export async function markFailed(store: JobStore, data: unknown, code: string, err: Error): Promise<void> {
  const jobId = (data as { jobId?: unknown } | null)?.jobId;
  if (typeof jobId !== "string" || !(await store.get(jobId))) return;
  await store.transition(jobId, "failed", { error: { code, message: err.message.slice(0, 500) } });
}

/**
 * A shard a stage gave up on counts its users as failed, so its batch still completes (its
 * manifest has no lines for them). Returns whether it was the batch's last shard.
 */
export async function markShardFailed(batches: BatchStore, data: unknown): Promise<boolean> {
  const d = data as { tenant?: unknown; batchId?: unknown; shard?: unknown; userIds?: unknown } | null;
  if (typeof d?.batchId !== "string" || typeof d.tenant !== "string" || typeof d.shard !== "number" || !Array.isArray(d.userIds)) return false;
  const { last } = await batches.shardDone({ batchId: d.batchId, tenant: d.tenant }, d.shard, { succeeded: 0, failed: d.userIds.length, cancelled: 0 });
  return last;
}
