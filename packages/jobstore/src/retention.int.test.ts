import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "@rebeca/devstack";
import { redisKeys } from "@rebeca/contracts";
import { createOutputRecords, createRetentionIndex } from "./retention.js";

describe("retention index and output records (real Redis)", () => {
  let server: RedisServer;
  let redis: Redis;
  const prefix = "{ret}";
  const keys = redisKeys(prefix);

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it("keeps the first due time of a repeated registration and hands out only what is due, earliest first", async () => {
    const index = createRetentionIndex(redis, prefix);
    const a = { kind: "job" as const, tenant: "acme", id: "job_a" };
    const b = { kind: "batch" as const, tenant: "acme", id: "batch_b" };
    await index.register(a, 2000);
    await index.register(a, 9000); // a retried CreateJob: the first score stands
    await index.register(b, 1000);
    expect(await index.due(1500, 10)).toEqual([b]);
    expect(await index.due(5000, 10)).toEqual([b, a]);
    expect(await index.due(5000, 1)).toEqual([b]);
    await index.reschedule(b, 8000);
    expect(await index.dueCount(5000)).toBe(1);
    await index.remove(a);
    expect(await index.due(10_000, 10)).toEqual([b]);
  });

  it("reads how jobs and batches ended, and marks deletion without reviving a record that is gone", async () => {
    const records = createOutputRecords(redis, prefix);
    const job = { jobId: "job_1", state: "succeeded", endTime: "2026-12-02T18:00:00.000Z", outputTtlSeconds: 60, outputs: [{ uri: "s3://b/k" }] };
    await redis.hset(keys.job("job_1"), "state", "succeeded", "doc", JSON.stringify(job));
    await redis.hset(keys.batch("batch_1"), "doc", JSON.stringify({ spec: { outputTtlSeconds: 120 } }), "state", "cancelled", "end_time", "", "manifest", "");
    const jobRef = { kind: "job" as const, tenant: "acme", id: "job_1" };
    const batchRef = { kind: "batch" as const, tenant: "acme", id: "batch_1" };
    expect(await records.endOf(jobRef)).toEqual({ ended: true, endTime: job.endTime, ttlSeconds: 60 });
    // A cancelled batch has not ended until its manifest of what completed is written.
    expect(await records.endOf(batchRef)).toEqual({ ended: false, endTime: "", ttlSeconds: 120 });
    await redis.hset(keys.batch("batch_1"), "end_time", "2026-12-02T18:00:00.000Z", "manifest", "s3://b/m");
    expect((await records.endOf(batchRef))!.ended).toBe(true);

    await records.markDeleted(jobRef, "2026-12-02T19:00:00.000Z");
    const marked = JSON.parse((await redis.hget(keys.job("job_1"), "doc"))!);
    expect(marked).toMatchObject({ state: "succeeded", outputs: [], outputsDeletedTime: "2026-12-02T19:00:00.000Z" });
    await records.markDeleted(batchRef, "2026-12-02T19:00:00.000Z");
    expect(await redis.hmget(keys.batch("batch_1"), "manifest", "outputs_deleted_time", "state")).toEqual(["", "2026-12-02T19:00:00.000Z", "cancelled"]);

    const gone = { kind: "batch" as const, tenant: "acme", id: "batch_gone" };
    expect(await records.endOf(gone)).toBeNull();
    await records.markDeleted(gone, "2026-12-02T19:00:00.000Z");
    await records.markDeleted({ kind: "job", tenant: "acme", id: "job_gone" }, "2026-12-02T19:00:00.000Z");
    expect(await redis.exists(keys.batch("batch_gone"), keys.job("job_gone"))).toBe(0);
  });
});
