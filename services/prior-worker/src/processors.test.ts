import { describe, expect, it } from "vitest";
import {
  batchImageSeed,
  canTransition,
  decodeEmbeddings,
  fromInlineEmbeddings,
  imageSeed,
  objectKeys,
  prepareJob,
  type BatchSpec,
  type JobKind,
  type JobRecord,
  type JobStateName,
  type PriorTask,
  type ShardTask,
} from "@rebeca/contracts";
import type { BatchStore, JobStore } from "@rebeca/jobstore";
import type { BlobStore } from "@rebeca/storage";
import { createLogger, UnrecoverableError } from "@rebeca/platform";
import type { PriorBackend, SampleJob } from "./backend.js";
import { createPriorProcessor } from "./processor.js";
import { createShardProcessor } from "./shard-processor.js";

const DIM = 2;

/** A prior whose embedding of item i is [seed, row-of-user]; `unknown` is not in the model. */
function fakeBackend(): PriorBackend & { calls: SampleJob[] } {
  const calls: SampleJob[] = [];
  return {
    calls,
    versions: new Map([["m1", { embeddingDim: DIM }]]),
    async sample(job) {
      calls.push(job);
      const served: number[] = [];
      const rejected: number[] = [];
      job.userIds.forEach((u, i) => (u === "unknown" && job.unknownUser === "reject" ? rejected : served).push(i));
      const embeddings = new Float32Array(served.flatMap((i) => [job.seeds[i]!, job.userIds[i] === "unknown" ? -1 : 1]));
      return { embeddings, served, population: served.map((i) => job.userIds[i] === "unknown"), rejected };
    },
    async close() {},
  };
}

/** Jobs added, as the catalog prepares them (so payloads are parsed as in production). */
function fakeSink() {
  const added: { kind: JobKind; queue: string; data: Record<string, unknown>; jobId: string | undefined }[] = [];
  return {
    added,
    async add<K extends JobKind>(kind: K, payload: never) {
      const job = prepareJob(kind, payload);
      added.push({ kind, queue: job.queue, data: job.data as Record<string, unknown>, jobId: job.opts.jobId });
    },
  };
}

function fakeBlobs() {
  const objects = new Map<string, Uint8Array>();
  return { objects, blobs: { put: async (key: string, bytes: Uint8Array) => (objects.set(key, bytes), `s3://b/${key}`), uri: (key: string) => `s3://b/${key}` } as unknown as BlobStore };
}

/** One job record with the lifecycle's compare-and-set, as the job store keeps it. */
function fakeStore(state: JobStateName) {
  let record = { jobId: "job_1", state } as JobRecord;
  const moves: { to: JobStateName; patch: Record<string, unknown> }[] = [];
  const store = {
    get: async () => record,
    async transition(_id: string, to: JobStateName, patch: Record<string, unknown> = {}) {
      if (!canTransition(record.state, to)) return { applied: false, record };
      record = { ...record, ...patch, state: to };
      moves.push({ to, patch });
      return { applied: true, record, eventId: "1-0" };
    },
  };
  return { moves, store: store as unknown as JobStore };
}

const task: PriorTask = { tenant: "acme", jobId: "job_1", userId: "u1", modelVersion: "m1", numImages: 3, guidance: 3, steps: 10, sampler: "ddim", seed: 42, unknownUser: "reject", priority: 2, traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" };
const log = createLogger("prior-worker-test", "silent");

describe("prior processor (one job)", () => {
  it("samples the job's images with their derived seeds, moves it to DECODING and hands it on inline", async () => {
    const { store, moves } = fakeStore("queued");
    const backend = fakeBackend();
    const jobs = fakeSink();
    const { blobs, objects } = fakeBlobs();
    expect(await createPriorProcessor({ store, backend, blobs, jobs, log })(task)).toBe("done");

    const seeds = [0, 1, 2].map((i) => imageSeed(42, i));
    expect(backend.calls[0]).toMatchObject({ userIds: ["u1", "u1", "u1"], seeds, guidance: 3, steps: 10, sampler: "ddim" });
    expect(moves.map((m) => m.to)).toEqual(["sampling", "decoding"]);
    expect(objects.size).toBe(0); // small: inline, the decoder stores it
    const [decode] = jobs.added;
    expect(decode).toMatchObject({ kind: "decode", queue: "decode.acme", jobId: "job_1", data: { seeds, embeddingDim: DIM, priority: 2, embeddingsKey: objectKeys.embeddings("acme", "job_1") } });
    expect([...decodeEmbeddings(fromInlineEmbeddings(decode!.data.embeddings as string))]).toEqual(seeds.flatMap((s) => [Math.fround(s), 1]));
    // The decode hop continues the job's trace as a child span.
    expect(String(decode!.data.traceparent).split("-")[1]).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(decode!.data.traceparent).not.toBe(task.traceparent);
  });

  it("stores large embeddings in S3 first and sends only their key", async () => {
    const { store } = fakeStore("queued");
    const jobs = fakeSink();
    const { blobs, objects } = fakeBlobs();
    await createPriorProcessor({ store, backend: fakeBackend(), blobs, jobs, log, inlineEmbeddingsMaxBytes: 8 })(task);
    expect([...decodeEmbeddings(objects.get(objects.keys().next().value!)!)]).toHaveLength(3 * DIM);
    expect(jobs.added[0]!.data.embeddings).toBeUndefined();
  });

  it("a redelivered job that reached DECODING only repeats the hand-off; a cancelled one is skipped", async () => {
    const decoding = fakeStore("decoding");
    const jobs = fakeSink();
    expect(await createPriorProcessor({ store: decoding.store, backend: fakeBackend(), blobs: fakeBlobs().blobs, jobs, log })(task)).toBe("done");
    expect(decoding.moves).toEqual([]);
    expect(jobs.added.map((a) => a.kind)).toEqual(["decode"]);

    const cancelled = fakeStore("cancelled");
    const none = fakeSink();
    const backend = fakeBackend();
    expect(await createPriorProcessor({ store: cancelled.store, backend, blobs: fakeBlobs().blobs, jobs: none, log })(task)).toBe("skipped");
    expect(backend.calls).toEqual([]);
    expect(none.added).toEqual([]);
  });

  it("fails an unknown user under `reject` with UNKNOWN_USER, and refuses a model it does not serve", async () => {
    const { store, moves } = fakeStore("queued");
    const jobs = fakeSink();
    expect(await createPriorProcessor({ store, backend: fakeBackend(), blobs: fakeBlobs().blobs, jobs, log })({ ...task, userId: "unknown" })).toBe("done");
    expect(moves.at(-1)).toMatchObject({ to: "failed", patch: { error: { code: "UNKNOWN_USER" } } });
    expect(jobs.added).toEqual([]);
    await expect(createPriorProcessor({ store, backend: fakeBackend(), blobs: fakeBlobs().blobs, jobs, log })({ ...task, modelVersion: "m9" })).rejects.toBeInstanceOf(UnrecoverableError);
  });
});

const spec: BatchSpec = { numImages: 2, guidance: 3, steps: 10, sampler: "ddim", seed: 7, modelVersion: "m1", priority: 1, labels: {}, callbackUrl: "", callbackEvents: [], unknownUser: "reject", shardSize: 3 };
const shard: ShardTask = { tenant: "acme", batchId: "batch_1", shard: 1, firstPosition: 3, userIds: ["u1", "unknown", "u3"], spec, traceparent: "" };

/** A batch with `shardsTotal` shards, each counted once; `stopped` makes every step say so. */
function fakeBatches(shardsTotal: number, stopped = false) {
  const counted = new Map<number, { succeeded: number; failed: number; cancelled: number }>();
  const batches = {
    shardStep: async () => (stopped ? "stopped" : "ok"),
    async shardDone(_b: unknown, index: number, n: { succeeded: number; failed: number; cancelled: number }) {
      if (counted.has(index)) return { counted: false, last: counted.size === shardsTotal };
      counted.set(index, n);
      return { counted: true, last: counted.size === shardsTotal };
    },
  };
  return { counted, batches: batches as unknown as BatchStore };
}

describe("shard processor (one shard of a batch)", () => {
  it("samples the shard in chunks with position-derived seeds, stores one embeddings object and hands on the failures", async () => {
    const backend = fakeBackend();
    const jobs = fakeSink();
    const { blobs, objects } = fakeBlobs();
    const { batches, counted } = fakeBatches(2);
    expect(await createShardProcessor({ batches, backend, blobs, jobs, chunkUsers: 2 })(shard)).toBe("done");

    expect(backend.calls.map((c) => c.userIds)).toEqual([["u1", "u1", "unknown", "unknown"], ["u3", "u3"]]);
    expect(backend.calls[1]!.seeds).toEqual([batchImageSeed(7, 5, 0), batchImageSeed(7, 5, 1)]);
    const key = objectKeys.shardEmbeddings("acme", "batch_1", 1);
    expect(decodeEmbeddings(objects.get(key)!)).toHaveLength(4 * DIM); // u1 and u3, 2 images each
    expect(jobs.added).toEqual([
      expect.objectContaining({ kind: "decodeShard", queue: "decode-batch.acme", jobId: "batch_1-s1", data: expect.objectContaining({ embeddingsKey: key, embeddingDim: DIM, failed: [{ position: 4, code: "UNKNOWN_USER", message: "user unknown is not in model m1" }] }) }),
    ]);
    expect(counted.size).toBe(0); // the decode stage counts it
  });

  it("counts a shard of a stopped batch as cancelled, and finalizes the batch when it was the last", async () => {
    const jobs = fakeSink();
    const { batches, counted } = fakeBatches(1, true);
    const backend = fakeBackend();
    expect(await createShardProcessor({ batches, backend, blobs: fakeBlobs().blobs, jobs })(shard)).toBe("skipped");
    expect(backend.calls).toEqual([]);
    expect(counted.get(1)).toEqual({ succeeded: 0, failed: 0, cancelled: 3 });
    expect(jobs.added).toEqual([expect.objectContaining({ kind: "finalizeBatch", queue: "decode-batch.acme", jobId: "batch_1-final" })]);
  });
});
