/**
 * The steps every stage shares at a batch's seams: counting a shard into its batch (and enqueuing
 * the batch's finalize step when it was the last), and recording a job that failed for good.
 * Written against role interfaces, so stages and tests pass the job store or fakes.
 */
import type { JobKind, JobSink } from "@rebeca/contracts";
import type { FinalFailure } from "./stage-worker.js";

/** Users of a shard by outcome. */
export interface ShardOutcome {
  succeeded: number;
  failed: number;
  cancelled: number;
  /** Users not done when the batch's deadline passed. @default 0 */
  expired?: number;
}

/** What counting a shard needs from the batch store (`BatchStore.shardDone`). */
export interface ShardCounter {
  /** Counts the shard into its batch once; `last`: every shard of the batch is now accounted for. */
  shardDone(batch: { batchId: string; tenant: string }, index: number, n: ShardOutcome): Promise<{ counted: boolean; last: boolean }>;
}

/** A shard as its task names it. */
export interface ShardRef {
  tenant: string;
  batchId: string;
  shard: number;
}

/**
 * Counts a shard into its batch; when it was the batch's last, enqueues the batch's finalize step
 * (idempotent job id, so a repeat after a crash adds nothing). Returns what `shardDone` said.
 */
export async function countShard(
  deps: { batches: ShardCounter; jobs: Pick<JobSink, "add"> },
  shard: ShardRef,
  n: ShardOutcome,
): Promise<{ counted: boolean; last: boolean }> {
  const result = await deps.batches.shardDone({ batchId: shard.batchId, tenant: shard.tenant }, shard.shard, n);
  if (result.last) await deps.jobs.add("finalizeBatch", { tenant: shard.tenant, batchId: shard.batchId });
  return result;
}

/** What recording a failed job needs from the job store. */
export interface JobFailureRecorder {
  /** Moves the job to FAILED with this error; a job that is gone or already finished is left alone. */
  failJob(jobId: string, error: { code: string; message: string }): Promise<void>;
}

/** Kinds whose payload names one job (`jobId`) and kinds that carry one shard of a batch. */
const JOB_KINDS: ReadonlySet<JobKind> = new Set(["sample", "decode"]);
const SHARD_KINDS: ReadonlySet<JobKind> = new Set(["sampleShard", "decodeShard"]);

/**
 * The `onFinalFailure` of a stage: a job's record says FAILED with `code` and the error; a shard's
 * users count as failed, so its batch still completes (its manifest has no lines for them). A
 * payload too broken to parse is read as far as it names a job or a shard (a job whose name is in
 * no catalog entry too); one that names neither has nothing to record.
 */
export function createFailureRouter(deps: { code: string; jobs: JobFailureRecorder; batches: ShardCounter; sink: Pick<JobSink, "add"> }) {
  return async function onFinalFailure({ kind, data, err }: FinalFailure): Promise<void> {
    const d = (data ?? {}) as { jobId?: unknown; tenant?: unknown; batchId?: unknown; shard?: unknown; userIds?: unknown };
    const namesJob = typeof d.jobId === "string";
    const namesShard = typeof d.tenant === "string" && typeof d.batchId === "string" && typeof d.shard === "number" && Array.isArray(d.userIds);
    if ((kind === undefined || JOB_KINDS.has(kind)) && namesJob)
      await deps.jobs.failJob(d.jobId as string, { code: deps.code, message: err.message.slice(0, 500) });
    if ((kind === undefined || SHARD_KINDS.has(kind)) && namesShard) {
      const shard = { tenant: d.tenant as string, batchId: d.batchId as string, shard: d.shard as number };
      await countShard({ batches: deps.batches, jobs: deps.sink }, shard, { succeeded: 0, failed: (d.userIds as unknown[]).length, cancelled: 0 });
    }
  };
}
