// The job catalog on a real Redis: producers add through it, stage workers dispatch through it.
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "@rebeca/devstack";
import { redisKeys, stageQueue, type JobData, type ShardTask } from "@rebeca/contracts";
import { createLogger, createMetricsRegistry, createQueueCache, startStageWorkers, type FinalFailure, type StageWorkers } from "@rebeca/platform";

describe("job catalog: add and dispatch", () => {
  let server: RedisServer;
  let redis: Redis;
  let workers: StageWorkers;
  const prefix = "{dispatch}";
  const seen: { kind: string; data: unknown; tenant: string }[] = [];
  const failures: FinalFailure[] = [];
  const failed = new Set<string>();
  let queues: ReturnType<typeof createQueueCache>;

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url, { maxRetriesPerRequest: null });
    queues = createQueueCache(redis, prefix);
    await redis.sadd(redisKeys(prefix).tenants(), "acme");
    workers = await startStageWorkers({
      stage: "prior",
      prefix,
      connection: redis,
      tenants: async () => ["acme"],
      handlers: {
        sample: async (data: JobData<"sample">, _job, tenant) => (seen.push({ kind: "sample", data, tenant }), "done"),
        sampleShard: async (data: JobData<"sampleShard">, _job, tenant) => (seen.push({ kind: "sampleShard", data, tenant }), "done"),
      },
      onFinalFailure: async (f) => {
        failures.push(f);
        failed.add(String((f.data as { jobId?: string }).jobId ?? f.err.message));
      },
      registry: createMetricsRegistry("dispatch-test"),
      log: createLogger("dispatch-test", "silent"),
    });
  });
  afterAll(async () => {
    await workers?.close();
    await queues?.close();
    redis?.disconnect();
    await server?.stop();
  });

  const until = async (done: () => boolean) => {
    const deadline = Date.now() + 20_000;
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(done()).toBe(true);
  };

  it("hands each kind to its own handler with the parsed payload (schema defaults filled), from the queue the catalog names", async () => {
    await queues.add("sample", {
      tenant: "acme",
      jobId: "job_1",
      userId: "u",
      modelVersion: "m",
      numImages: 1,
      guidance: 3,
      steps: 10,
      sampler: "ddim",
      seed: 1,
      unknownUser: "reject",
      priority: 0,
    });
    const shard: ShardTask = {
      tenant: "acme",
      batchId: "batch_1",
      shard: 0,
      firstPosition: 0,
      userIds: ["u1", "u2"],
      spec: {
        numImages: 1,
        guidance: 3,
        steps: 10,
        sampler: "ddim",
        seed: 1,
        modelVersion: "m",
        priority: 0,
        labels: {},
        callbackUrl: "",
        callbackEvents: [],
        unknownUser: "reject",
        shardSize: 2,
      },
      traceparent: "",
    };
    await queues.addBulk("sampleShard", [shard, { ...shard, shard: 1 }]);
    await until(() => seen.length === 3);
    expect(seen.map((s) => s.kind).sort()).toEqual(["sample", "sampleShard", "sampleShard"]);
    expect(seen.find((s) => s.kind === "sample")).toMatchObject({ tenant: "acme", data: { jobId: "job_1", traceparent: "" } });
    // The catalog put shards in the tenant's batch queue and the job in its interactive queue.
    expect(
      queues
        .list()
        .map((q) => q.queue.name)
        .sort(),
    ).toEqual([stageQueue("prior", "acme", "interactive"), stageQueue("prior", "acme", "batch")].sort());
  });

  it("refuses a bad payload before anything is enqueued", async () => {
    await expect(queues.add("sample", { tenant: "acme", jobId: "job_2" } as never)).rejects.toThrow(/numImages|userId/);
    expect(await queues.get("prior", "acme").getJobCounts("wait", "prioritized", "active")).toEqual({ wait: 0, prioritized: 0, active: 0 });
  });

  it("fails at once, without retries, a job named in no catalog entry and one whose payload does not parse", async () => {
    // Written behind the catalog's back, as an older or foreign producer could.
    const raw = new Queue(stageQueue("prior", "acme"), { connection: redis, prefix });
    await raw.add("resample", { tenant: "acme", jobId: "job_3" }, { jobId: "job_3", attempts: 5 });
    await raw.add("sample", { tenant: "acme", jobId: "job_4" }, { jobId: "job_4", attempts: 5 });
    await until(() => failed.has("job_3") && failed.has("job_4"));
    const byJob = new Map(failures.map((f) => [(f.data as { jobId: string }).jobId, f]));
    expect(byJob.get("job_3")).toMatchObject({ kind: undefined, err: { message: 'no prior job is named "resample"' } });
    expect(byJob.get("job_4")!.kind).toBe("sample");
    expect(byJob.get("job_4")!.err.message).toMatch(/^bad prior sample payload/);
    for (const id of ["job_3", "job_4"]) expect((await raw.getJob(id))!.attemptsMade).toBe(1);
    expect(seen.filter((s) => (s.data as { jobId?: string }).jobId === "job_4")).toEqual([]);
    await raw.close();
  });
});
