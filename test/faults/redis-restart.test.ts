import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";
import { checkBatch, checkJobs, report } from "../support/invariants.js";

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
    const jobIds = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => (await jobs.createJob({ requestId: `redis-job-${i}`, userId: users[i]!, sampler: 2 })).job!.jobId),
    );
    await new Promise((r) => setTimeout(r, 400));
    const before = await batches.getBatch(batch.batchId);
    expect(before.shardsDone).toBeLessThan(20);

    await stack.redis.restart();

    const restarted = Date.now();
    const figures = await checkBatch(stack, batches, batch.batchId, ids, 1);
    const single = await checkJobs(stack, jobs, "globex", jobIds, 1);
    report("redis-restart", { batch: figures, jobs: single, shardsDoneBefore: before.shardsDone, completedAfterRestartMs: Date.now() - restarted });
    batches.close();
    jobs.close();
  });
});
