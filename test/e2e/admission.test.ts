import { status } from "@grpc/grpc-js";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { grpcError, retryDelaySeconds } from "../support/grpc-errors.js";

/** Past a tenant's limits the gateway answers RESOURCE_EXHAUSTED with RetryInfo, and queues nothing. */
describe("admission", () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  async function queued(s: Stack, tenant: string) {
    const redis = new Redis(s.redis.url);
    const queue = new Queue(`prior.${tenant}`, { connection: redis, prefix: s.prefix });
    const counts = await queue.getJobCounts("wait", "prioritized");
    await queue.close();
    redis.disconnect();
    return Object.values(counts).reduce((a, b) => a + b, 0);
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
