import { status, type ServiceError } from "@grpc/grpc-js";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { stageQueue, WORK_CLASSES } from "@rebeca/contracts";
import { chunksOf, createBatchClient, createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { grpcError, retryDelaySeconds } from "../support/grpc-errors.js";

/** Past a tenant's limits the gateway answers RESOURCE_EXHAUSTED with RetryInfo, and queues nothing. */
describe("admission", () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  /** Jobs and shards waiting in the tenant's prior queues (both work classes). */
  async function queued(s: Stack, tenant: string) {
    const redis = new Redis(s.redis.url);
    let total = 0;
    for (const workClass of WORK_CLASSES) {
      const queue = new Queue(stageQueue("prior", tenant, workClass), { connection: redis, prefix: s.prefix });
      total += Object.values(await queue.getJobCounts("wait", "prioritized")).reduce((a, b) => a + b, 0);
      await queue.close();
    }
    redis.disconnect();
    return total;
  }

  it("limits a tenant's submissions per second, not another tenant's", async () => {
    stack = await startStack({ services: ["gateway"], env: { gateway: { SUBMISSIONS_PER_SECOND: "5" } } });
    const acme = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const globex = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => acme.createJob({ requestId: `rate-${i}`, userId: "u0001" })));
    const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
    const accepted = results.length - refused.length;
    expect(accepted).toBeGreaterThanOrEqual(5);
    expect(accepted).toBeLessThan(10);
    for (const err of refused) {
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(retryDelaySeconds(err)).toBeGreaterThan(0);
    }
    expect(await queued(stack, "acme")).toBe(accepted);
    expect((await globex.createJob({ requestId: "other", userId: "u0001" })).job).toBeTruthy();
    acme.close();
    globex.close();
  });

  it("counts a batch's pending shards in the tenant's backlog, though they wait in the batch queue", async () => {
    stack = await startStack({ services: ["gateway"], env: { gateway: { MAX_PRIOR_BACKLOG: "3", SHARD_SIZE: "2" } } });
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const ids = Array.from({ length: 8 }, (_, i) => `u${String(i + 1).padStart(4, "0")}`);
    await batches.createBatch({ requestId: "fill", numImages: 1 }, chunksOf(ids, 8));
    expect(await queued(stack, "acme")).toBe(4); // 4 shards, no workers
    // Backlog counts are reused for up to a second: poll until the refresh sees the shards.
    const deadline = Date.now() + 5000;
    let refusal: ServiceError | undefined;
    for (let i = 0; !refusal && Date.now() < deadline; i++) {
      refusal = await jobs.createJob({ requestId: `after-${i}`, userId: "u0001" }).then(
        () => undefined,
        (err: ServiceError) => err,
      );
      if (!refusal) await new Promise((r) => setTimeout(r, 100));
    }
    expect(refusal?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refusal?.details).toMatch(/backlog is \d+ jobs \(limit 3\)/);
    batches.close();
    jobs.close();
  });

  it("refuses everything while Redis is past its memory budget", async () => {
    stack = await startStack({ services: ["gateway"], env: { gateway: { REDIS_MEMORY_BUDGET_BYTES: "1" } } });
    const acme = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const err = await grpcError(() => acme.createJob({ requestId: "mem", userId: "u0001" }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toContain("memory budget");
    expect(retryDelaySeconds(err)).toBe(30);
    expect(await queued(stack, "acme")).toBe(0);
    acme.close();
  });
});
