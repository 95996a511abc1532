import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { JobState } from "@rebeca/contracts/grpc";
import { modelUserIds } from "../support/world.js";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";

/*
 * Fault scenario: Redis (AOF, appendfsync everysec) restarted mid-batch. A graceful restart
 * fsyncs the AOF, so nothing accepted is lost; the services reconnect on their own (workers wait,
 * the gateway fails fast with UNAVAILABLE meanwhile) and the work completes exactly once.
 * Durability window for a crash (not tested here: kill -9 of Redis): up to one second of writes.
 */
describe("faults: Redis restarted mid-batch", () => {
  let stack: Stack;
  const users = modelUserIds();
  const fast = { LOCK_DURATION_MS: "3000", STALLED_INTERVAL_MS: "1000" };

  beforeAll(async () => {
    stack = await startStack({ aof: true, env: { gateway: { SHARD_SIZE: "8" }, "prior-worker": fast, "decoder-worker": fast } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("completes every user and job exactly once after the restart", async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const ids = Array.from({ length: 160 }, (_, i) => users[i % users.length]!);
    const batch = await batches.createBatch({ requestId: "redis-1", sampler: 2 }, chunksOf(ids, 40));
    const jobIds = await Promise.all(Array.from({ length: 5 }, async (_, i) => (await jobs.createJob({ requestId: `redis-job-${i}`, userId: users[i]!, sampler: 2 })).job!.jobId));
    await new Promise((r) => setTimeout(r, 400));
    const before = await batches.getBatch(batch.batchId);
    expect(before.shardsDone).toBeLessThan(20);

    await stack.redis.restart();

    const final = await untilBatchCompleted(batches, batch.batchId);
    expect(final.state).toBe(BatchState.BATCH_STATE_COMPLETED);
    expect(final.counts).toMatchObject({ total: 160, succeeded: 160, failed: 0, cancelled: 0 });
    for (const jobId of jobIds) {
      const job = await untilJobDone(jobs, jobId);
      expect(job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect(job.outputs).toHaveLength(1);
    }
    batches.close();
    jobs.close();
  });
});
