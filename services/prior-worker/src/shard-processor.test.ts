/*
 * The prior stage of a batch shard over fakes of its ports (testing/fakes.ts): chunking, seeds by
 * position, one embeddings object per shard, unknown users travelling on as failures, and what a
 * cancelled batch or a redelivered shard does. The real path is test/e2e/batches.test.ts.
 */
import { describe, expect, it } from "vitest";
import { batchImageSeed, decodeEmbeddings, newId, objectKeys, stageQueue, type DecodeShardTask, type ShardTask } from "@rebeca/contracts";
import { createShardProcessor, usersPerCall } from "./shard-processor.js";
import { DIM, embeddingOf, fakeBackend, memoryBlobs, memoryShards, recordingJobSink } from "./testing/fakes.js";

function shardTask(overrides: Partial<ShardTask> = {}): ShardTask {
  return {
    tenant: "acme",
    batchId: newId("batch"),
    shard: 1,
    firstPosition: 10,
    userIds: ["alice", "bob", "carol"],
    spec: {
      numImages: 2,
      guidance: 3,
      steps: 50,
      sampler: "ddim",
      seed: 42,
      modelVersion: "demo-v1",
      priority: 0,
      labels: {},
      callbackUrl: "",
      callbackEvents: [],
      unknownUser: "reject",
      shardSize: 3,
    },
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ...overrides,
  };
}

function setUp(opts: { shardsTotal?: number; hold?: boolean; chunkUsers?: number; chunkWork?: number } = {}) {
  const batches = memoryShards(opts.shardsTotal ?? 2);
  const blobs = memoryBlobs();
  const jobs = recordingJobSink();
  const backend = fakeBackend(["alice", "bob", "carol"], { hold: opts.hold ?? false });
  const heldBack: string[] = [];
  const run = createShardProcessor({
    backend,
    batches,
    blobs,
    jobs,
    chunkUsers: opts.chunkUsers ?? 2,
    ...(opts.chunkWork !== undefined ? { chunkWork: opts.chunkWork } : {}),
    cancelCheckMs: 5,
    holdBack: async (tenant) => void heldBack.push(tenant),
  });
  return { batches, blobs, jobs, backend, heldBack, run };
}

/** The seeds of the users at `positions`, image by image, as the batch derives them. */
const seedsAt = (seed: number, positions: number[], k: number) => positions.flatMap((p) => Array.from({ length: k }, (_, i) => batchImageSeed(seed, p, i)));

describe("shard processor", () => {
  it("samples the shard in chunks with seeds from each user's batch position, stores one embeddings object and hands the shard to decode", async () => {
    const { run, batches, blobs, jobs, backend, heldBack } = setUp();
    const task = shardTask();
    expect(await run(task)).toBe("done");

    expect(heldBack).toEqual(["acme"]);
    // chunkUsers = 2: users 10-11, then user 12; k = 2 images each.
    expect(backend.calls.map((c) => c.userIds)).toEqual([
      ["alice", "alice", "bob", "bob"],
      ["carol", "carol"],
    ]);
    expect(backend.calls.map((c) => c.seeds)).toEqual([seedsAt(42, [10, 11], 2), seedsAt(42, [12], 2)]);
    const key = objectKeys.shardEmbeddings("acme", task.batchId, 1);
    expect(decodeEmbeddings(blobs.objects.get(key)!)).toEqual(Float32Array.from(seedsAt(42, [10, 11, 12], 2).flatMap(embeddingOf)));
    expect(batches.shards.get(1)).toBe("decoding");

    expect(jobs.added).toHaveLength(1);
    expect(jobs.added[0]).toMatchObject({ queue: stageQueue("decode", "acme", "batch"), name: "shard", opts: { jobId: `${task.batchId}-s1` } });
    const data = jobs.added[0]!.data as DecodeShardTask;
    expect(data).toMatchObject({
      batchId: task.batchId,
      shard: 1,
      firstPosition: 10,
      userIds: task.userIds,
      embeddingsKey: key,
      embeddingDim: DIM,
      failed: [],
    });
    expect(data.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(data.traceparent).not.toBe(task.traceparent);
  });

  it("takes more users per call while the call's work (users × images × evaluations) stays within chunkWork", async () => {
    // 3 users × 2 images × 3 evaluations = 18: one call within a bound of 18, two within 12.
    for (const [chunkWork, calls] of [
      [18, [["alice", "alice", "bob", "bob", "carol", "carol"]]],
      [
        12,
        [
          ["alice", "alice", "bob", "bob"],
          ["carol", "carol"],
        ],
      ],
    ] as const) {
      const { run, backend, blobs } = setUp({ chunkUsers: 1, chunkWork });
      const task = shardTask({ spec: { ...shardTask().spec, steps: 3, sampler: "dpmpp_2m" } });
      expect(await run(task)).toBe("done");
      expect(backend.calls.map((c) => c.userIds)).toEqual(calls);
      // Chunking never changes what a user gets: seeds come from batch positions.
      const key = objectKeys.shardEmbeddings("acme", task.batchId, 1);
      expect(decodeEmbeddings(blobs.objects.get(key)!)).toEqual(Float32Array.from(seedsAt(42, [10, 11, 12], 2).flatMap(embeddingOf)));
    }
  });

  it("keeps chunkUsers as the floor: a slow sampler's calls do not shrink below it", () => {
    expect(usersPerCall(1, 3, 16, 768)).toBe(256);
    expect(usersPerCall(16, 3, 16, 768)).toBe(16);
    expect(usersPerCall(1, 1000, 16, 768)).toBe(16);
    expect(usersPerCall(1, 3, 16, 0)).toBe(16);
  });

  it("sends users the model does not know on as failures with their positions, and stores only the served rows", async () => {
    const { run, blobs, jobs } = setUp();
    const task = shardTask({ userIds: ["alice", "mallory", "carol"] });
    expect(await run(task)).toBe("done");
    const data = jobs.added[0]!.data as DecodeShardTask;
    expect(data.failed).toEqual([{ position: 11, code: "UNKNOWN_USER", message: "user mallory is not in model demo-v1" }]);
    const stored = decodeEmbeddings(blobs.objects.get(data.embeddingsKey)!);
    expect(stored).toEqual(Float32Array.from(seedsAt(42, [10, 12], 2).flatMap(embeddingOf)));
  });

  it("counts a shard of a cancelled batch as cancelled without sampling, and enqueues the finalize step when it was the last", async () => {
    const { run, batches, jobs, backend } = setUp({ shardsTotal: 2 });
    const task = shardTask();
    batches.state.batch = "cancelled";
    batches.shards.set(0, "done");
    expect(await run(task)).toBe("skipped");
    expect(backend.calls).toHaveLength(0);
    expect(batches.counted).toEqual([{ index: 1, succeeded: 0, failed: 0, cancelled: 3 }]);
    expect(jobs.added).toHaveLength(1);
    expect(jobs.added[0]).toMatchObject({
      queue: stageQueue("decode", "acme", "batch"),
      name: "finalize",
      data: { tenant: "acme", batchId: task.batchId },
      opts: { jobId: `${task.batchId}-final` },
    });
  });

  it("does not finalize a cancelled batch whose other shards are still out", async () => {
    const { run, batches, jobs } = setUp({ shardsTotal: 2 });
    batches.state.batch = "cancelled";
    expect(await run(shardTask())).toBe("skipped");
    expect(batches.counted).toHaveLength(1);
    expect(jobs.added).toHaveLength(0);
  });

  it("stops sampling when the batch is cancelled meanwhile and counts the shard's users as cancelled", async () => {
    const { run, batches, jobs, backend, blobs } = setUp({ hold: true });
    const running = run(shardTask());
    while (backend.calls.length === 0) await new Promise((r) => setImmediate(r));
    batches.state.batch = "cancelled";
    expect(await running).toBe("skipped");
    expect(batches.counted).toEqual([{ index: 1, succeeded: 0, failed: 0, cancelled: 3 }]);
    expect(blobs.objects.size).toBe(0);
    expect(jobs.added.some((j) => j.name === "shard")).toBe(false);
  });

  it("counts a shard taken after its batch's deadline as expired, without sampling", async () => {
    const { run, batches, jobs, backend } = setUp({ shardsTotal: 1 });
    const task = shardTask({ shard: 0 });
    task.spec.deadline = new Date(Date.now() - 1).toISOString();
    expect(await run(task)).toBe("skipped");
    expect(backend.calls).toHaveLength(0);
    expect(batches.counted).toEqual([{ index: 0, succeeded: 0, failed: 0, cancelled: 0, expired: 3 }]);
    // It was the last shard: the finalize step (which ends the batch EXPIRED) is enqueued.
    expect(jobs.added.map((j) => j.name)).toEqual(["finalize"]);
  });

  it("stops sampling when the deadline passes meanwhile and counts the shard's users as expired", async () => {
    const { run, batches, jobs, backend, blobs } = setUp({ hold: true });
    const task = shardTask();
    task.spec.deadline = new Date(Date.now() + 30).toISOString();
    const running = run(task);
    while (backend.calls.length === 0) await new Promise((r) => setImmediate(r));
    expect(await running).toBe("skipped");
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(task.spec.deadline));
    expect(batches.counted).toEqual([{ index: 1, succeeded: 0, failed: 0, cancelled: 0, expired: 3 }]);
    expect(blobs.objects.size).toBe(0);
    expect(jobs.added.some((j) => j.name === "shard")).toBe(false);
  });

  it("skips a redelivered shard that was already counted, without sampling or enqueueing", async () => {
    const { run, batches, jobs, backend } = setUp();
    batches.shards.set(1, "done");
    expect(await run(shardTask())).toBe("skipped");
    expect(backend.calls).toHaveLength(0);
    expect(jobs.added).toHaveLength(0);
    expect(batches.counted).toHaveLength(0);
  });
});
