import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { chunksOf, createBatchClient, createJobClient, jsonLine, startService, startStack, type RunningService, type Stack } from "@rebeca/devstack";
import { stageQueue, type Stage } from "@rebeca/contracts";
import { modelUserIds } from "../support/world.js";
import { checkBatch, checkJobs, report } from "../support/invariants.js";
import { startSlowProxy, type SlowProxy } from "../support/slow-proxy.js";

/*
 * Fault scenario: SIGTERM to a prior and a decoder worker while they hold work, with a second
 * worker of each stage running. The drained worker must exit within DRAIN_DEADLINE_MS, and the
 * jobs it still held must be handed back to the queue (not left locked), so the other worker
 * takes them in seconds. Lock duration and stalled interval are 10 minutes here: a test that
 * relied on stalled-job detection could not finish. The drained decoder reaches S3 through a slow
 * proxy, so its decodes are still running when the deadline nears (the hand-back path runs in
 * both stages, not only the prior).
 */
describe("faults: SIGTERM drains workers within the deadline", () => {
  let stack: Stack;
  let redis: Redis;
  let proxy: SlowProxy;
  const victims: RunningService[] = [];
  const users = modelUserIds();
  const slowLocks = { LOCK_DURATION_MS: "600000", STALLED_INTERVAL_MS: "600000" };
  const DRAIN_DEADLINE_MS = 4000;
  // Pinned (the default is 16): the wait below reasons from how many jobs one prior worker may hold.
  const priorConcurrency = { CONCURRENCY: "4" };

  beforeAll(async () => {
    // The surviving decoder starts later: first the slow one must hold decodes.
    stack = await startStack({
      services: ["gateway", "prior-worker", "notifier"],
      env: { gateway: { SHARD_SIZE: "64" }, "prior-worker": { ...slowLocks, ...priorConcurrency }, "decoder-worker": slowLocks },
    });
    redis = new Redis(stack.redis.url);
    proxy = await startSlowProxy(Number(new URL(stack.s3.endpoint).port), { delayMs: 300, bytesPerSecond: 64 * 1024 });
  });
  afterAll(async () => {
    await Promise.all(victims.map((v) => v.process.stop()));
    redis?.disconnect();
    await stack?.stop();
    await proxy?.close();
  });

  /** Line objects of `svc`'s log with message `msg`. */
  const logged = (svc: RunningService, msg: string) => svc.process.lines.map(jsonLine).filter((l) => l?.msg === msg) as Record<string, unknown>[];

  it("in-flight jobs finish or are handed back, and another worker completes them without a stalled check", async () => {
    const drainEnv = { ...slowLocks, DRAIN_DEADLINE_MS: String(DRAIN_DEADLINE_MS) };
    victims.push(await startService("prior-worker", { ...stack.envFor("prior-worker"), ...drainEnv, ...priorConcurrency }));
    victims.push(await startService("decoder-worker", { ...stack.envFor("decoder-worker"), ...drainEnv, S3_ENDPOINT: proxy.endpoint }));
    const [prior, decoder] = victims as [RunningService, RunningService];

    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const ids = Array.from({ length: 512 }, (_, i) => users[i % users.length]!);
    // DDPM (1000 steps): a shard of 64 users samples longer than the drain allows.
    const batch = await batches.createBatch({ requestId: "drain-1", numImages: 4, sampler: 2 }, chunksOf(ids, 80));
    const jobIds = await Promise.all(
      Array.from(
        { length: 6 },
        async (_, i) => (await jobs.createJob({ requestId: `drain-job-${i}`, userId: users[i]!, numImages: 2, sampler: 2 })).job!.jobId,
      ),
    );

    // Wait until the victim holds at least two shards: each worker runs up to 4 jobs of a tenant's
    // queue (CONCURRENCY), so 6 active means the victim holds 2 or more. They share one sampler
    // thread, and two shards of 64 users × 4 images at DDPM 1000 take longer than the hand-back
    // point; with a single shard the victim could finish it and have nothing to hand back.
    const priorQueue = new Queue(stageQueue("prior", "acme", "batch"), { connection: redis, prefix: stack.prefix });
    const decodeQueue = new Queue(stageQueue("decode", "acme", "batch"), { connection: redis, prefix: stack.prefix });
    const queues = [
      priorQueue,
      decodeQueue,
      ...["prior", "decode"].map((s) => new Queue(stageQueue(s as Stage, "globex"), { connection: redis, prefix: stack.prefix })),
    ];
    const deadline = Date.now() + 120_000;
    const priorActive = async () => (await priorQueue.getJobCounts("active")).active ?? 0;
    // ...and the slow decoder, the only one so far, holds decodes; then the other one starts.
    // A shard decode (64 users, 128 uploads through the proxy) takes far longer than the drain.
    const decodeActive = async () => (await decodeQueue.getJobCounts("active")).active ?? 0;
    while (((await priorActive()) < 6 || (await decodeActive()) < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await priorActive()).toBeGreaterThanOrEqual(6);
    expect(await decodeActive()).toBeGreaterThan(0);
    const survivor = stack.start("decoder-worker");

    const times: Record<string, number> = {};
    await Promise.all(
      [prior, decoder].map(async (svc) => {
        const t0 = Date.now();
        svc.process.child.kill("SIGTERM");
        const code = await svc.process.exited;
        times[svc.name] = Date.now() - t0;
        if (code !== 0) console.log(svc.name, svc.process.child.signalCode, svc.process.lines.slice(-12).join("\n"));
        expect(code, `${svc.name} exit code`).toBe(0);
      }),
    );
    const signalled = Date.now();
    await survivor;
    // Exited within the drain deadline (plus process start-up noise on a loaded machine).
    expect(times["prior-worker"]).toBeLessThan(DRAIN_DEADLINE_MS + 1500);
    expect(times["decoder-worker"]).toBeLessThan(DRAIN_DEADLINE_MS + 1500);
    // No "drain deadline passed" exit: the hand-back made it in time.
    for (const v of victims) expect(logged(v, "drain deadline passed; exiting")).toHaveLength(0);

    const handedBack = [...logged(prior, "drain deadline near: job handed back"), ...logged(decoder, "drain deadline near: job handed back")].map((l) =>
      String(l.jobId),
    );
    // The prior victim held DDPM shards that could not finish in time: the path was exercised.
    expect(logged(prior, "drain deadline near: job handed back").length).toBeGreaterThan(0);
    expect(logged(decoder, "drain deadline near: job handed back").length).toBeGreaterThan(0);

    // Each handed-back job is taken by a surviving worker and finishes, long before a stalled
    // check (10 min) could have found it.
    const pickedUpMs: number[] = [];
    for (const jobId of handedBack) {
      const until = Date.now() + 240_000;
      let state = "";
      for (;;) {
        const states = await Promise.all(queues.map((q) => q.getJobState(jobId)));
        state = states.find((s) => s !== "unknown") ?? "unknown";
        if (state === "active" || state === "completed" || Date.now() > until) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      pickedUpMs.push(Date.now() - signalled);
      expect(["active", "completed"]).toContain(state);
    }
    const figures = await checkBatch(stack, batches, batch.batchId, ids, 4, 400_000);
    const completedMs = Date.now() - signalled;
    const single = await checkJobs(stack, jobs, "globex", jobIds, 2);
    expect(completedMs).toBeLessThan(Number(slowLocks.STALLED_INTERVAL_MS) / 2);
    report("sigterm-drain", {
      batch: figures,
      jobs: single,
      exitMs: times,
      handedBack: {
        prior: logged(prior, "drain deadline near: job handed back").length,
        decoder: logged(decoder, "drain deadline near: job handed back").length,
      },
      maxPickupMs: Math.max(0, ...pickedUpMs),
      batchDoneAfterSignalMs: completedMs,
      stalledIntervalMs: Number(slowLocks.STALLED_INTERVAL_MS),
    });
    await Promise.all(queues.map((q) => q.close()));
    batches.close();
    jobs.close();
  }, 600_000);
});
