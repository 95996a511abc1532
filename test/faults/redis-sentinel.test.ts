import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startRedisSentinel, startStack, type RedisSentinelSet, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";
import { checkBatch, checkJobs, report } from "../support/invariants.js";

/*
 * Redis high availability (issue 18): every service reaches Redis through Sentinel
 * (`redis+sentinel://…`). The primary is SIGKILLed in the middle of a batch while a client keeps
 * submitting single jobs; the sentinels agree it is down (down-after 1 s) and promote the replica;
 * the services follow the new primary on their own. Every accepted user and job must end exactly
 * once with its output. The submitter retries a refused request (UNAVAILABLE) under the same
 * request id, as clients do, and the scenario reports how long submissions were refused.
 */
const UNAVAILABLE = 14;

describe("faults: Redis Sentinel fails the primary over mid-batch", () => {
  let sentinel: RedisSentinelSet;
  let stack: Stack;
  const users = modelUserIds();
  const fast = { LOCK_DURATION_MS: "3000", STALLED_INTERVAL_MS: "1000" };

  beforeAll(async () => {
    sentinel = await startRedisSentinel({ downAfterMs: 1000 });
    stack = await startStack({ env: { "*": { REDIS_URL: sentinel.url }, gateway: { SHARD_SIZE: "8" }, "prior-worker": fast, "decoder-worker": fast } });
  });
  afterAll(async () => {
    await stack?.stop();
    await sentinel?.stop();
  });

  it("loses and duplicates nothing, and refuses submissions only while no primary is elected", async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const ids = Array.from({ length: 120 }, (_, i) => users[i % users.length]!);
    const batch = await batches.createBatch({ requestId: "sentinel-1", sampler: 2 }, chunksOf(ids, 40));

    // A client submitting a job every 100 ms throughout; a refused request is retried under its id.
    const accepted: string[] = [];
    const refusedAt: number[] = [];
    let stop = false;
    const submitter = (async () => {
      for (let n = 0; !stop;) {
        try {
          const r = await jobs.createJob({ requestId: `sentinel-job-${n}`, userId: users[n % users.length]!, numImages: 1 });
          accepted.push(r.job!.jobId);
          n++;
        } catch (err) {
          if ((err as { code?: number }).code !== UNAVAILABLE) throw err;
          refusedAt.push(Date.now());
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    for (let t = Date.now(); (await batches.getBatch(batch.batchId)).shardsDone < 1 && Date.now() - t < 60_000;) await new Promise((r) => setTimeout(r, 50));
    const before = await batches.getBatch(batch.batchId);
    const oldPrimary = sentinel.primary.port;
    const killedAt = Date.now();
    await sentinel.primary.process.kill();

    // The sentinels promote the replica.
    let promotedAt = 0;
    while (!promotedAt && Date.now() - killedAt < 60_000) {
      if ((await sentinel.primaryPort()) === sentinel.replica.port) promotedAt = Date.now();
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(promotedAt, "the replica was promoted").toBeGreaterThan(0);
    // Keep submitting until 20 jobs went through after the promotion.
    const acceptedAtPromotion = accepted.length;
    while (accepted.length < acceptedAtPromotion + 20 && Date.now() - promotedAt < 60_000) await new Promise((r) => setTimeout(r, 50));
    stop = true;
    await submitter;
    expect(before.shardsDone, "the failover came mid-batch").toBeLessThan(120 / 8);

    const figures = await checkBatch(stack, batches, batch.batchId, ids, 1, 300_000);
    const single = await checkJobs(stack, jobs, "globex", accepted, 1);
    const refusedMs = refusedAt.length ? refusedAt.at(-1)! - refusedAt[0]! : 0;
    // Submissions are refused at most from the kill until shortly after the promotion.
    expect(refusedAt.every((t) => t >= killedAt)).toBe(true);
    report("redis-sentinel", {
      batch: figures,
      jobs: single,
      oldPrimary,
      newPrimary: sentinel.replica.port,
      shardsDoneBefore: before.shardsDone,
      promotedAfterMs: promotedAt - killedAt,
      refusedRequests: refusedAt.length,
      refusedMs,
      firstRefusalAfterKillMs: refusedAt.length ? refusedAt[0]! - killedAt : null,
      lastRefusalAfterPromotionMs: refusedAt.length ? refusedAt.at(-1)! - promotedAt : null,
    });
    batches.close();
    jobs.close();
  }, 400_000);
});
