import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";
import { checkBatch, checkJobs, report } from "../support/invariants.js";

/*
 * Fault scenario: the object store is unavailable for 30 s mid-batch (S3_OUTAGE_MS overrides).
 * Stage jobs fail their S3 reads and writes and are retried with exponential backoff (10
 * attempts ≈ 8 minutes of tolerance); when S3 returns, everything completes exactly once.
 */
const OUTAGE_MS = Number(process.env.S3_OUTAGE_MS ?? 30_000);

describe("faults: S3 unavailable mid-batch", () => {
  let stack: Stack;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({ env: { gateway: { SHARD_SIZE: "8" } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it(`completes every user and job once S3 is back after ${OUTAGE_MS / 1000} s`, async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const ids = Array.from({ length: 120 }, (_, i) => users[i % users.length]!);
    const batch = await batches.createBatch({ requestId: "s3-1", sampler: 2 }, chunksOf(ids, 40));
    const jobIds = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => (await jobs.createJob({ requestId: `s3-job-${i}`, userId: users[i]!, numImages: 2 })).job!.jobId),
    );

    await new Promise((r) => setTimeout(r, 300));
    await stack.s3.stop();
    const outageStart = Date.now();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    const during = await batches.getBatch(batch.batchId);
    await stack.s3.start();
    const outageMs = Date.now() - outageStart;
    expect(outageMs).toBeGreaterThanOrEqual(OUTAGE_MS);
    expect(during.shardsDone).toBeLessThan(15); // the outage really stalled the batch

    const figures = await checkBatch(stack, batches, batch.batchId, ids, 1);
    const recoveredMs = Date.now() - outageStart - outageMs;
    // Every worker survived the outage (a crash would leave the queues unserved).
    for (const svc of Object.values(stack.services)) expect(svc!.process.child.exitCode, `${svc!.name} exited`).toBeNull();
    const single = await checkJobs(stack, jobs, "globex", jobIds, 2);
    report("s3-outage", { outageMs, batch: figures, jobs: single, shardsDoneAtEndOfOutage: during.shardsDone, completedAfterS3BackMs: recoveredMs });
    batches.close();
    jobs.close();
  }, 600_000);
});
