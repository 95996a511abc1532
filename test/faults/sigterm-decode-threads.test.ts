import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import {
  assembleLatentModelsDir,
  chunksOf,
  createBatchClient,
  createJobClient,
  jsonLine,
  REPO_ROOT,
  startService,
  startStack,
  type RunningService,
  type Stack,
} from "@rebeca/devstack";
import { stageQueue } from "@rebeca/contracts";
import { modelUserIds } from "../support/world.js";
import { checkBatch, checkJobs, report } from "../support/invariants.js";

/*
 * Fault scenario: SIGTERM to a decoder worker while decodes run on its decoder threads. The
 * decodes are slow on purpose (the tiny latent decoder at 500 DDIM steps: seconds per chunk), so
 * the drain hands the shards back while their decodes are still inside the threads, and the
 * threads are stopped with decodes in flight. Terminating a thread inside an ONNX run aborts the
 * whole process; the pool must cancel the runs and let them leave onnxruntime first. The worker
 * must exit 0 within the deadline, and another decoder must finish what it handed back: nothing
 * lost, nothing twice.
 */
describe("faults: SIGTERM while decodes run on decoder threads", () => {
  let stack: Stack;
  let redis: Redis;
  let modelsDir: string;
  let victim: RunningService | undefined;
  const users = modelUserIds();
  const slowLocks = { LOCK_DURATION_MS: "600000", STALLED_INTERVAL_MS: "600000" };
  // Both decoders decode the same way (same images: deterministic keys), only slowly.
  const slowDecodes = { LATENT_SCHEDULER: "ddim", LATENT_STEPS: "500", DECODE_LANES: "2", DECODE_THREADS: "true" };
  const DRAIN_DEADLINE_MS = 4000;

  beforeAll(async () => {
    modelsDir = assembleLatentModelsDir(`${REPO_ROOT}packages/inference/test-fixtures/latent-tiny`);
    stack = await startStack({
      modelsDir,
      services: ["gateway", "prior-worker"],
      env: { "*": { DEFAULT_MODEL_VERSION: "latent-v1" }, gateway: { SHARD_SIZE: "16" }, "decoder-worker": { ...slowLocks, ...slowDecodes } },
    });
    redis = new Redis(stack.redis.url);
  });
  afterAll(async () => {
    await victim?.process.stop();
    redis?.disconnect();
    await stack?.stop();
    if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
  });

  const logged = (svc: RunningService, msg: string) => svc.process.lines.map(jsonLine).filter((l) => l?.msg === msg) as Record<string, unknown>[];

  it("exits 0 within the deadline with no abort, hands the decodes back, and another decoder completes them", async () => {
    victim = await startService("decoder-worker", { ...stack.envFor("decoder-worker"), DRAIN_DEADLINE_MS: String(DRAIN_DEADLINE_MS) });
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const ids = Array.from({ length: 32 }, (_, i) => users[i % users.length]!);
    const batch = await batches.createBatch({ requestId: "threads-1", numImages: 2 }, chunksOf(ids, 16));
    const jobIds = await Promise.all(
      [0, 1].map(async (i) => (await jobs.createJob({ requestId: `threads-job-${i}`, userId: users[i]!, numImages: 2 })).job!.jobId),
    );

    // Both shards are with the victim (its only competitor starts later), decoding on its threads.
    const decodeQueue = new Queue(stageQueue("decode", "acme", "batch"), { connection: redis, prefix: stack.prefix });
    const deadline = Date.now() + 120_000;
    const active = async () => (await decodeQueue.getJobCounts("active")).active ?? 0;
    while ((await active()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await active()).toBe(2);
    const survivor = stack.start("decoder-worker");

    const t0 = Date.now();
    victim.process.child.kill("SIGTERM");
    const code = await victim.process.exited;
    const exitMs = Date.now() - t0;
    if (code !== 0) console.log(victim.process.child.signalCode, victim.process.lines.slice(-20).join("\n"));
    // An abort inside a thread shows as a signal (SIGABRT) or a non-zero code.
    expect(victim.process.child.signalCode).toBeNull();
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(DRAIN_DEADLINE_MS + 1500);
    expect(logged(victim, "drain deadline passed; exiting")).toHaveLength(0);
    const handedBack = logged(victim, "drain deadline near: job handed back");
    expect(handedBack.length).toBeGreaterThan(0);
    // The threads were stopped with decodes in flight, and every one left its model run in time.
    const [stopped] = logged(victim, "decoder threads stopped");
    expect(stopped?.cancelled).toBeGreaterThan(0);
    expect(stopped?.unfinished).toBe(0);
    await survivor;

    const figures = await checkBatch(stack, batches, batch.batchId, ids, 2, 300_000);
    const single = await checkJobs(stack, jobs, "globex", jobIds, 2);
    expect(figures.lost + single.lost).toBe(0);
    expect(figures.duplicates + single.duplicates).toBe(0);
    report("sigterm-decode-threads", { batch: figures, jobs: single, exitMs, handedBack: handedBack.length, threadRunsCancelled: stopped?.cancelled });
    await decodeQueue.close();
    batches.close();
    jobs.close();
  }, 600_000);
});
