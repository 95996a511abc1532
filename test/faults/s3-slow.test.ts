import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, jsonLine, startStack, type ServiceName, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";
import { checkBatch, checkJobs, report } from "../support/invariants.js";
import { startSlowProxy, type SlowProxy } from "../support/slow-proxy.js";

/*
 * Fault scenario: a slow object store. Every service reaches s3rver through a TCP proxy that
 * adds latency to each chunk in both directions and caps bandwidth per connection. The batch and
 * jobs must complete exactly once, with no stage job failing for good, and no worker crashing.
 */
const DELAY_MS = Number(process.env.S3_SLOW_DELAY_MS ?? 250);
const BYTES_PER_SECOND = Number(process.env.S3_SLOW_BPS ?? 256 * 1024);

describe("faults: S3 slowed down", () => {
  let stack: Stack;
  let proxy: SlowProxy;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({ services: [], env: { gateway: { SHARD_SIZE: "16" } } });
    proxy = await startSlowProxy(Number(new URL(stack.s3.endpoint).port), { delayMs: DELAY_MS, bytesPerSecond: BYTES_PER_SECOND });
    for (const name of ["gateway", "prior-worker", "decoder-worker", "notifier"] as ServiceName[]) await stack.start(name, { S3_ENDPOINT: proxy.endpoint });
  });
  afterAll(async () => {
    await stack?.stop();
    await proxy?.close();
  });

  it("completes every user and job once, with no stage job failing for good", async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const ids = Array.from({ length: 160 }, (_, i) => users[i % users.length]!);
    const started = Date.now();
    const batch = await batches.createBatch({ requestId: "s3-slow-1", numImages: 2 }, chunksOf(ids, 40));
    const jobIds = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => (await jobs.createJob({ requestId: `s3-slow-job-${i}`, userId: users[i]!, numImages: 2 })).job!.jobId),
    );

    const figures = await checkBatch(stack, batches, batch.batchId, ids, 2);
    const single = await checkJobs(stack, jobs, "globex", jobIds, 2);
    const elapsedMs = Date.now() - started;
    expect(proxy.chunks).toBeGreaterThan(100); // the services really went through the slow path
    for (const svc of Object.values(stack.services)) expect(svc!.process.child.exitCode, `${svc!.name} exited`).toBeNull();
    // Slow is not broken: no stage job gave up (final) and none timed out into a retry.
    const failures = (["prior-worker", "decoder-worker"] as const).flatMap((n) =>
      stack.services[n]!.process.lines.map(jsonLine).filter((l) => l?.msg === "stage job failed"),
    );
    expect(failures.filter((l) => l!.final)).toHaveLength(0);
    expect(failures).toHaveLength(0);
    report("s3-slow", { delayMs: DELAY_MS, bytesPerSecond: BYTES_PER_SECOND, batch: figures, jobs: single, elapsedMs, proxiedChunks: proxy.chunks });
    batches.close();
    jobs.close();
  }, 600_000);
});
