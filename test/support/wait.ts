import type { BatchClient, JobClient } from "@rebeca/devstack";
import { BatchState, type Batch } from "@rebeca/contracts/grpc-batches";
import { JobState, type Job } from "@rebeca/contracts/grpc";

const FINISHED_JOB = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED, JobState.JOB_STATE_EXPIRED]);

/** Polls until the job is terminal (or the deadline passes); returns it as last seen. */
export async function untilJobDone(jobs: JobClient, jobId: string, timeoutMs = 60_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  let job = (await jobs.getJob(jobId)).job!;
  while (!FINISHED_JOB.has(job.state) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    job = (await jobs.getJob(jobId)).job!;
  }
  return job;
}

/** Polls until the batch completed with its manifest written (or the deadline passes). */
export async function untilBatchCompleted(batches: BatchClient, batchId: string, timeoutMs = 120_000): Promise<Batch> {
  const deadline = Date.now() + timeoutMs;
  let batch: Batch | undefined;
  for (;;) {
    // UNAVAILABLE while a dependency restarts: keep the last answer and ask again.
    batch = await batches.getBatch(batchId).catch(() => batch);
    if ((batch?.state === BatchState.BATCH_STATE_COMPLETED && batch.endTime) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!batch) throw new Error(`batch ${batchId} could not be read before the deadline`);
  return batch;
}
