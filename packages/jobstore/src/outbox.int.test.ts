import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "@rebeca/devstack";
import { DEFAULT_BATCH_CALLBACK_EVENTS, fieldsToObject, newId, parseOutboxEntry, type BatchSpec, type OutboxEntry } from "@rebeca/contracts";
import { createBatchStore } from "./batches.js";
import { newJobRecord } from "./records.js";
import { createJobStore } from "./store.js";

/**
 * The outbox's writers (the stores' Lua scripts and pipeline) and its reader (contracts'
 * parseOutboxEntry, which the notifier uses) agree: every entry a real Redis holds parses, as the
 * kind it was written as, with the values written.
 */
describe("outbox entries written by the stores parse through the contract", () => {
  let server: RedisServer;
  let redis: Redis;
  const prefix = "{outbox}";
  const url = "https://hooks.example.com/x";

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  const readOutbox = async (): Promise<OutboxEntry[]> => {
    const entries = await redis.xrange(`${prefix}:outbox`, "-", "+");
    await redis.del(`${prefix}:outbox`);
    return entries.map(([, fields]) => parseOutboxEntry(fieldsToObject(fields)));
  };

  it("job events (create and transition scripts)", async () => {
    const store = createJobStore(redis, { prefix });
    const spec = {
      userId: "u1",
      numImages: 1,
      guidance: 3,
      steps: 10,
      sampler: "ddim" as const,
      seed: 1,
      modelVersion: "m",
      priority: 0,
      labels: { k: "v" },
      callbackUrl: url,
      callbackEvents: ["job.queued", "job.sampling"],
      unknownUser: "reject" as const,
    };
    const record = newJobRecord({ jobId: newId("job"), tenant: "acme", requestId: "r1", spec, now: new Date().toISOString() });
    await store.create(record);
    await store.transition(record.jobId, "sampling");
    const entries = await readOutbox();
    expect(entries.map((e) => [e.kind, e.type, e.tenant, e.url])).toEqual([
      ["job", "job.queued", "acme", url],
      ["job", "job.sampling", "acme", url],
    ]);
    const last = entries[1]!;
    expect(last.kind === "job" && last.job).toMatchObject({ jobId: record.jobId, state: "sampling", labels: { k: "v" } });
    expect(last.eventId).toMatch(/^\d+-\d+$/);
  });

  it("batch events (the emit function of the batch scripts) and per-user events (pipeline)", async () => {
    const batches = createBatchStore(redis, { prefix });
    const spec: BatchSpec = {
      numImages: 1,
      guidance: 3,
      steps: 10,
      sampler: "ddim",
      seed: 1,
      modelVersion: "m",
      priority: 0,
      labels: { k: "v" },
      callbackUrl: url,
      callbackEvents: [],
      unknownUser: "reject",
      shardSize: 2,
    };
    const batchId = newId("batch");
    await batches.create({
      batchId,
      tenant: "acme",
      requestId: "r2",
      spec,
      createTime: new Date().toISOString(),
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    });
    expect(await batches.addShards(batchId, [{ index: 0, users: 2 }], 2)).toBe("ok");
    await batches.seal({ batchId, tenant: "acme" }, 2, 1);
    await batches.addUserCallbacks(
      "acme",
      url,
      [{ eventId: `${batchId}-u0-user.succeeded`, type: "user.succeeded", body: '{"type":"user.succeeded"}' }],
      "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
    );
    await batches.shardDone({ batchId, tenant: "acme" }, 0, { succeeded: 1, failed: 1, cancelled: 0 });
    await batches.finish((await batches.get(batchId))!, "completed", { manifest: "s3://b/m.jsonl" }, DEFAULT_BATCH_CALLBACK_EVENTS);
    const entries = await readOutbox();
    expect(entries.map((e) => [e.kind, e.type])).toEqual([
      ["user", "user.succeeded"],
      ["batch", "batch.completed"],
    ]);
    const [user, done] = entries;
    expect(user).toMatchObject({
      tenant: "acme",
      url,
      body: '{"type":"user.succeeded"}',
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
    });
    expect(done!.kind === "batch" && done!.batch).toMatchObject({
      batchId,
      state: "completed",
      resultManifestUri: "s3://b/m.jsonl",
      counts: { total: 2, succeeded: 1, failed: 1, shardsTotal: 1, shardsDone: 1 },
    });
  });
});
