import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { CALLBACK_JOB_ATTEMPTS, CALLBACK_RETRY_SCHEDULE_MS, JOB_CATALOG, jobKindOf, prepareJob, queueOfJob, type JobKind } from "./catalog.js";
import { finalizeJobId, shardJobId, type BatchSpec } from "./batches.js";

const spec: BatchSpec = {
  numImages: 2,
  guidance: 3,
  steps: 10,
  sampler: "ddim",
  seed: 7,
  modelVersion: "m1",
  priority: 5,
  labels: {},
  callbackUrl: "",
  callbackEvents: [],
  unknownUser: "reject",
  shardSize: 2,
};
const shard = { tenant: "acme", batchId: "batch_1", shard: 3, firstPosition: 6, userIds: ["u1", "u2"], spec };

describe("job catalog", () => {
  it("gives every kind a name unique within its family, so a consumer can dispatch on (family, name)", () => {
    const seen = new Set<string>();
    for (const [kind, entry] of Object.entries(JOB_CATALOG)) {
      const key = `${entry.family}/${entry.name}`;
      expect(seen.has(key), `${kind} repeats ${key}`).toBe(false);
      seen.add(key);
      expect(jobKindOf(entry.family, entry.name)).toBe(kind);
    }
    expect(jobKindOf("decode", "sample")).toBeUndefined();
  });

  it("routes a shard of a batch to the tenant's batch queue with a deterministic id and the batch's priority", () => {
    const job = prepareJob("sampleShard", shard);
    expect(job).toMatchObject({ queue: "prior-batch.acme", family: "prior", workClass: "batch", tenant: "acme", name: "shard" });
    expect(job.opts).toMatchObject({ jobId: shardJobId("batch_1", 3), priority: 6, attempts: 10 });
    expect((job.data as { traceparent: string }).traceparent).toBe(""); // schema default filled in
  });

  it("sends a batch's finalize step to the batch decode queue under the batch's finalize id", () => {
    const job = prepareJob("finalizeBatch", { tenant: "acme", batchId: "batch_1" });
    expect(job).toMatchObject({ queue: "decode-batch.acme", name: "finalize" });
    expect(job.opts.jobId).toBe(finalizeJobId("batch_1"));
  });

  it("keeps interactive jobs in the tenant's interactive queue", () => {
    expect(queueOfJob("sample", "acme").queue).toBe("prior.acme");
    expect(queueOfJob("decode", "acme").queue).toBe("decode.acme");
  });

  it("puts every callback in the one callbacks queue, with a job id BullMQ accepts and the notifier's backoff", () => {
    const job = prepareJob("deliverCallback", { tenant: "acme", messageId: "msg_acme_1-0:x", url: "https://example.com/hook", eventId: "1-0", body: "{}" });
    expect(job).toMatchObject({ queue: "callbacks", tenant: "", name: "deliver" });
    expect(job.opts.jobId).toBe("msg_acme_1-0%3Ax");
    expect(job.opts.attempts).toBe(CALLBACK_JOB_ATTEMPTS);
    expect(CALLBACK_JOB_ATTEMPTS).toBe(CALLBACK_RETRY_SCHEDULE_MS.length + 2);
    expect(job.opts.backoff).toEqual({ type: "callback-schedule" });
    expect(
      prepareJob("deliverCallback", { tenant: "acme", messageId: "m", url: "https://example.com/hook", eventId: "1-0", body: "{}" }, { jobId: "m.replay.1" })
        .opts.jobId,
    ).toBe("m.replay.1");
  });

  it("refuses a payload that does not match its schema, before anything is enqueued", () => {
    expect(() => prepareJob("finalizeBatch", { tenant: "acme" } as never)).toThrow(ZodError);
    expect(() => prepareJob("sampleShard", { ...shard, userIds: [] })).toThrow(ZodError);
  });

  it("gives every job removal and bounded retries (finished jobs must not fill Redis)", () => {
    const samples: Record<JobKind, unknown> = {
      sample: {
        tenant: "t",
        jobId: "j",
        userId: "u",
        modelVersion: "m",
        numImages: 1,
        guidance: 3,
        steps: 10,
        sampler: "ddim",
        seed: 1,
        unknownUser: "reject",
        priority: 0,
      },
      sampleShard: shard,
      decode: { tenant: "t", jobId: "j", modelVersion: "m", embeddingsKey: "k", embeddingDim: 4, seeds: [1], priority: 0 },
      decodeShard: { ...shard, embeddingsKey: "k", embeddingDim: 4, failed: [] },
      finalizeBatch: { tenant: "t", batchId: "b" },
      deliverCallback: { tenant: "t", messageId: "m", url: "https://example.com/", eventId: "e", body: "{}" },
      eraseUsers: { tenant: "t", erasureId: "erasure_1" },
    };
    for (const kind of Object.keys(JOB_CATALOG) as JobKind[]) {
      const { opts } = prepareJob(kind, samples[kind] as never);
      expect(opts.removeOnComplete, kind).toBeTruthy();
      expect(opts.removeOnFail, kind).toBeTruthy();
      expect(opts.attempts, kind).toBeGreaterThan(1);
      expect(opts.jobId, kind).toBeTruthy();
    }
  });

  it("puts every tenant's erasures in the one data queue under the erasure's id (a repeat adds nothing)", () => {
    const job = prepareJob("eraseUsers", { tenant: "acme", erasureId: "erasure_x" });
    expect(job).toMatchObject({ queue: "data", family: "data", tenant: "", name: "erase-users" });
    expect(job.opts.jobId).toBe("erasure_x");
  });
});
