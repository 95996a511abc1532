import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "@rebeca/devstack";
import { newId, type JobSpec } from "@rebeca/contracts";
import { newJobRecord } from "./records.js";
import { createJobStore, JobNotFoundError, type JobStore } from "./store.js";

const spec: JobSpec = {
  userId: "u0001",
  numImages: 2,
  guidance: 3,
  steps: 50,
  sampler: "ddim",
  seed: 1,
  modelVersion: "demo-v1",
  priority: 0,
  labels: { a: "b" },
  callbackUrl: "",
  callbackEvents: [],
  unknownUser: "reject",
};

describe("job store on a real Redis", () => {
  let server: RedisServer;
  let redis: Redis;
  let store: JobStore;
  let n = 0;
  const record = (overrides: Partial<JobSpec> = {}, tenant = "acme") =>
    newJobRecord({ jobId: newId("job"), tenant, requestId: `req-${n++}`, spec: { ...spec, ...overrides }, now: new Date().toISOString() });

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    store = createJobStore(redis, { prefix: "{test}", retentionSeconds: 60 });
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it("creates a job with its queued event, and a repeated request id returns the first job", async () => {
    const first = record();
    const created = await store.create(first);
    expect(created.created).toBe(true);
    const again = await store.create({ ...record(), requestId: first.requestId });
    expect(again).toEqual({ created: false, record: first });
    const events = await store.readEvents("acme", "0", 100);
    expect(events.filter((e) => e.jobId === first.jobId).map((e) => e.type)).toEqual(["job.queued"]);
  });

  it("applies each forward transition once, with one event each, and refuses repeats and moves back", async () => {
    const r = record();
    await store.create(r);
    expect((await store.transition(r.jobId, "sampling")).applied).toBe(true);
    expect((await store.transition(r.jobId, "sampling")).applied).toBe(false);
    expect((await store.transition(r.jobId, "queued")).applied).toBe(false);
    const done = await store.transition(r.jobId, "succeeded", { outputs: [] });
    expect(done.applied).toBe(true);
    expect(done.record.endTime).not.toBe("");
    expect((await store.transition(r.jobId, "cancelled")).applied).toBe(false);
    const types = (await store.readEvents("acme", "0", 1000)).filter((e) => e.jobId === r.jobId).map((e) => e.type);
    expect(types).toEqual(["job.queued", "job.sampling", "job.succeeded"]);
    // Finished jobs expire after the retention.
    expect(await redis.ttl(store.keys.job(r.jobId))).toBeGreaterThan(0);
  });

  it("a stale `known` record cannot overwrite a concurrent cancel (compare-and-set)", async () => {
    const r = record();
    await store.create(r);
    const sampling = await store.transition(r.jobId, "sampling");
    await store.transition(r.jobId, "cancelled");
    const late = await store.transition(r.jobId, "decoding", {}, sampling.record);
    expect(late.applied).toBe(false);
    expect(late.record.state).toBe("cancelled");
    expect((await store.get(r.jobId))!.state).toBe("cancelled");
  });

  it("keeps empty arrays as arrays through a transition", async () => {
    const r = record();
    await store.create(r);
    await store.transition(r.jobId, "sampling");
    const stored = await store.get(r.jobId);
    expect(stored!.outputs).toEqual([]);
    expect(stored!.callbackEvents).toEqual([]);
  });

  it("writes an outbox entry only for events the callback filter wants", async () => {
    const before = await redis.xlen(store.keys.outbox());
    const r = record({ callbackUrl: "https://hooks.example.com/x", callbackEvents: ["job.sampling"] });
    await store.create(r);
    await store.transition(r.jobId, "sampling");
    await store.transition(r.jobId, "decoding");
    const entries = await redis.xrange(store.keys.outbox(), "-", "+");
    expect(entries.length - before).toBe(1);
    const fields = entries[entries.length - 1]![1];
    expect(fields[fields.indexOf("type") + 1]).toBe("job.sampling");
    expect(fields[fields.indexOf("url") + 1]).toBe("https://hooks.example.com/x");
  });

  it("lists a tenant's jobs newest first, in pages, with filters, and only that tenant's", async () => {
    const mine = [];
    for (let i = 0; i < 5; i++) {
      const r = record({ labels: { list: "yes" } }, "listing");
      await store.create(r);
      mine.push(r.jobId);
      await new Promise((res) => setTimeout(res, 2)); // distinct milliseconds in the ids
    }
    await store.create(record({}, "other"));
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.list("listing", { pageSize: 2, after, filter: (r) => r.labels.list === "yes" });
      seen.push(...page.records.map((r) => r.jobId));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual([...mine].reverse());
  });

  it("transition of an unknown job throws JobNotFoundError", async () => {
    await expect(store.transition("job_00000000000000000000000000", "sampling")).rejects.toBeInstanceOf(JobNotFoundError);
  });
});
