import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { JobState } from "@rebeca/contracts/grpc";
import { modelUserIds } from "../support/world.js";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";

/*
 * Fault scenario: the object store is unavailable for a while mid-batch. Stage jobs fail their
 * S3 writes and are retried with exponential backoff (10 attempts ≈ 8 minutes of tolerance);
 * when S3 returns, everything completes exactly once.
 */
describe("faults: S3 unavailable mid-batch", () => {
  let stack: Stack;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({ env: { gateway: { SHARD_SIZE: "8" } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("completes every user and job once S3 is back", async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const ids = Array.from({ length: 120 }, (_, i) => users[i % users.length]!);
    const batch = await batches.createBatch({ requestId: "s3-1", sampler: 2 }, chunksOf(ids, 40));
    const jobIds = await Promise.all(Array.from({ length: 4 }, async (_, i) => (await jobs.createJob({ requestId: `s3-job-${i}`, userId: users[i]!, numImages: 2 })).job!.jobId));

    await new Promise((r) => setTimeout(r, 300));
    await stack.s3.stop();
    const outageStart = Date.now();
    await new Promise((r) => setTimeout(r, 8000));
    const during = await batches.getBatch(batch.batchId);
    await stack.s3.start();
    expect(Date.now() - outageStart).toBeGreaterThanOrEqual(8000);
    expect(during.shardsDone).toBeLessThan(15); // the outage really stalled the batch

    const final = await untilBatchCompleted(batches, batch.batchId);
    // Every worker survived the outage (a crash would leave the queues unserved).
    for (const svc of Object.values(stack.services)) expect(svc!.process.child.exitCode, `${svc!.name} exited`).toBeNull();
    expect(final.state).toBe(BatchState.BATCH_STATE_COMPLETED);
    expect(final.counts).toMatchObject({ total: 120, succeeded: 120, failed: 0, cancelled: 0 });
    for (const jobId of jobIds) {
      const job = await untilJobDone(jobs, jobId);
      expect(job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect(job.outputs).toHaveLength(2);
    }
    batches.close();
    jobs.close();
  });
});
