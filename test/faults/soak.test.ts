import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { chunksOf, createBatchClient, createJobClient, startStack, startWebhookReceiver, type Stack, type WebhookReceiver } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";
import { keysUnder, report, s3Of } from "../support/invariants.js";
import { floorSlope, slope } from "../support/trend.js";

/*
 * Soak: steady load (single jobs with callbacks, plus a small batch every 15 s) for SOAK_SECONDS
 * (60 in CI; FAULTS_FULL=1 makes it 600), sampling every service's RSS and Redis used_memory.
 * A warm-up burst first fills what retention caps by count (BullMQ keeps 1,000 finished jobs per
 * queue), and records and events are kept briefly (JOB_RETENTION_SECONDS, EVENTS_MAX_LEN), so
 * the measured part is steady state: memory must be flat there. Prints the slopes (MB/min).
 */
const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? (process.env.FAULTS_FULL === "1" ? 600 : 60));
const RATE_PER_SECOND = Number(process.env.SOAK_RATE ?? 5);
const WARMUP_JOBS = 1100;
const LONG = SOAK_SECONDS >= 300;
/**
 * Steady load before sampling starts, so heaps reach their steady size after the burst.
 * - Short run, 60 s: with CONCURRENCY 96 the prior worker's heap regrows for about a minute (its
 *   floor slope read 72–75 MB/min after a 30 s settle, 26 after 60 s); its loose bound only
 *   catches gross leaks.
 * - Long run, 480 s: V8 grows a heap in steps and the process touches the grown heap's pages for
 *   minutes. The decoder worker's heap total stepped from 103 to 166 MB at 135 s and its RSS
 *   climbed with it until about 480 s (284 → 329 MB) while its live heap stayed at 32–37 MB; a
 *   120 s settle read that climb as +5.4 and +5.8 MB/min (bound 2). See docs/reliability.md.
 */
const SETTLE_SECONDS = Number(process.env.SOAK_SETTLE_SECONDS ?? (LONG ? 480 : 60));
const SAMPLE_EVERY_MS = 2000;
/**
 * Upper bounds on the slopes (MB/min): a leak grows, so only growth fails. A process's RSS follows
 * its GC's sawtooth, which a 60 s window cannot average out (a plain regression read up to
 * 19 MB/min in CI, under 0.4 over 10 minutes), so RSS is judged by the sawtooth's floor and the
 * short run only catches gross leaks, the long run the rest;
 * Redis used_memory is not GC-driven and gets a tight bound in both.
 */
// Short runs still see warm-up: heaps grow back to their steady size through the first ~2
// minutes (decoder floor slope ~40 MB/min at minute 1), so the short bound only catches gross
// leaks; the 10-minute run, sampled after that, holds every process to 2 MB/min.
const MAX_RSS_SLOPE = LONG ? 2 : 60;
const MAX_REDIS_SLOPE = LONG ? 1 : 2;

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

describe("soak: steady load with flat memory", () => {
  let stack: Stack;
  let redis: Redis;
  let receiver: WebhookReceiver;
  const users = modelUserIds();

  beforeAll(async () => {
    // SOAK_ENV: more environment per service, as JSON ({"decoder-worker": {"S3_LEAN_PUTS": "false"}}),
    // to soak a configuration other than the default.
    const extra = JSON.parse(process.env.SOAK_ENV ?? "{}") as Record<string, Record<string, string>>;
    stack = await startStack({ env: { ...extra, "*": { JOB_RETENTION_SECONDS: "30", EVENTS_MAX_LEN: "500", ...extra["*"] } } });
    redis = new Redis(stack.redis.url);
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    redis?.disconnect();
    await receiver?.close();
    await stack?.stop();
  });

  it(`holds ${RATE_PER_SECOND} jobs/s for ${SOAK_SECONDS} s with every job done once and memory flat`, async () => {
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    let submitted = 0;
    const submit = async () => {
      const i = submitted++;
      await jobs.createJob({
        requestId: `soak-${i}`,
        userId: users[i % users.length]!,
        callbackUrl: receiver.url,
        callbackEvents: ["job.succeeded", "job.failed"],
      });
    };

    // Warm-up burst, 16 in flight, then wait until it is through.
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (submitted < WARMUP_JOBS) await submit();
      }),
    );
    await receiver.until((r) => r.length >= WARMUP_JOBS, 600_000);
    const warmupMs = Date.now() - t0;

    // Steady phase: jobs at a fixed rate, a 40-user batch every 15 s; after SETTLE_SECONDS, a
    // sample every 2 s.
    const pids = Object.fromEntries(Object.values(stack.services).map((s) => [s!.name, s!.process.child.pid!]));
    pids["redis-server"] = stack.redis.process.child.pid!;
    const samples: { t: number; rss: Record<string, number>; redisUsed: number }[] = [];
    const batchIds: string[] = [];
    const steadyStart = Date.now();
    const end = steadyStart + (SETTLE_SECONDS + SOAK_SECONDS) * 1000;
    let nextJob = steadyStart;
    let nextSample = steadyStart + SETTLE_SECONDS * 1000;
    let nextBatch = steadyStart;
    const inflight: Promise<void>[] = [];
    while (Date.now() < end) {
      const now = Date.now();
      if (now >= nextJob) {
        inflight.push(submit());
        nextJob += 1000 / RATE_PER_SECOND;
      }
      if (now >= nextBatch) {
        const ids = Array.from({ length: 40 }, (_, i) => users[(batchIds.length * 40 + i) % users.length]!);
        inflight.push(batches.createBatch({ requestId: `soak-batch-${batchIds.length}` }, chunksOf(ids, 40)).then((b) => void batchIds.push(b.batchId)));
        nextBatch += 15_000;
      }
      if (now >= nextSample) {
        const used = Number(/used_memory:(\d+)/.exec(await redis.info("memory"))![1]) / 2 ** 20;
        samples.push({
          t: (now - steadyStart) / 60_000 - SETTLE_SECONDS / 60,
          rss: Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, rssMb(pid)])),
          redisUsed: used,
        });
        nextSample += SAMPLE_EVERY_MS;
      }
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(nextJob, nextSample, nextBatch) - Date.now())));
    }
    await Promise.all(inflight);

    // Every job finished exactly once: one succeeded callback per job, none failed.
    const delivered = new Set<string>();
    let parsed = 0;
    await receiver.until((r) => {
      for (; parsed < r.length; parsed++) delivered.add((JSON.parse(r[parsed]!.body) as { data: { job_id: string } }).data.job_id);
      return delivered.size >= submitted;
    }, 300_000);
    const bodies = receiver.received.map((r) => ({
      id: String(r.headers["webhook-id"]),
      body: JSON.parse(r.body) as { type: string; data: { job_id: string } },
    }));
    expect(bodies.filter((b) => b.body.type !== "job.succeeded")).toHaveLength(0);
    const idsPerJob = new Map<string, Set<string>>();
    for (const b of bodies) idsPerJob.set(b.body.data.job_id, (idsPerJob.get(b.body.data.job_id) ?? new Set()).add(b.id));
    expect(idsPerJob.size).toBe(submitted);
    const duplicateCallbacks = [...idsPerJob.values()].filter((s) => s.size > 1).length;
    expect(duplicateCallbacks).toBe(0);
    // One image object per job, none twice (deterministic keys).
    const s3 = s3Of(stack);
    const images = (await keysUnder(s3, stack.s3.bucket, "tenants/acme/jobs/")).filter((k) => k.endsWith(".png"));
    expect(images).toHaveLength(submitted);
    // Batch records are gone by now (30 s retention); their objects say each user got its image once.
    for (const id of batchIds)
      expect((await keysUnder(s3, stack.s3.bucket, `tenants/globex/batches/${id}/users/`)).filter((k) => k.endsWith(".png"))).toHaveLength(40);
    s3.destroy();

    // Flat memory in steady state: RSS by the slope of its GC sawtooth's floor, Redis used_memory
    // (not GC-driven) by a least-squares slope over the sampled window.
    const settled = samples;
    const xs = settled.map((s) => s.t);
    const slopes: Record<string, number> = {};
    for (const name of Object.keys(pids))
      slopes[`${name} rss`] = floorSlope(
        xs,
        settled.map((s) => s.rss[name]!),
      );
    slopes["redis used_memory"] = slope(
      xs,
      settled.map((s) => s.redisUsed),
    );
    const round = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 100) / 100]));
    const last = samples.at(-1)!;
    report("soak", {
      seconds: SOAK_SECONDS,
      settleSeconds: SETTLE_SECONDS,
      ratePerSecond: RATE_PER_SECOND,
      warmupJobs: WARMUP_JOBS,
      warmupMs,
      jobs: {
        accepted: submitted,
        completed: idsPerJob.size,
        lost: submitted - idsPerJob.size,
        duplicates: duplicateCallbacks + images.length - new Set(images).size,
      },
      batches: batchIds.length,
      samples: settled.length,
      slopesMbPerMin: round(slopes),
      lastMb: round({ ...last.rss, "redis used_memory": last.redisUsed }),
    });
    for (const [name, s] of Object.entries(slopes))
      expect(s, `${name} slope (MB/min)`).toBeLessThan(name === "redis used_memory" ? MAX_REDIS_SLOPE : MAX_RSS_SLOPE);
    jobs.close();
    batches.close();
  }, 1_800_000);
});
