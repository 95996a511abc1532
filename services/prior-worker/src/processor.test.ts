/*
 * The prior stage of a single job over fakes of its ports (testing/fakes.ts): what it hands to
 * the decode stage, where the embeddings travel, and what a redelivery, a cancel or an unknown
 * user does. The real path (sampler threads, Redis, S3) is test/e2e/pipeline.test.ts.
 */
import { describe, expect, it } from "vitest";
import { decodeEmbeddings, fromInlineEmbeddings, imageSeed, objectKeys, stageQueue, type DecodeTask } from "@rebeca/contracts";
import { createLogger, UnrecoverableError } from "@rebeca/platform";
import { createPriorProcessor } from "./processor.js";
import { DIM, embeddingOf, fakeBackend, memoryBlobs, memoryJobStore, queuedJob, recordingJobSink } from "./testing/fakes.js";

function setUp(opts: { known?: string[]; hold?: boolean; inlineEmbeddingsMaxBytes?: number } = {}) {
  const store = memoryJobStore();
  const blobs = memoryBlobs();
  const jobs = recordingJobSink();
  const backend = fakeBackend(opts.known, { hold: opts.hold ?? false });
  const observed: number[] = [];
  const run = createPriorProcessor({
    backend,
    store,
    blobs,
    jobs,
    log: createLogger("test", "silent"),
    cancelCheckMs: 5,
    countEmbeddings: (n) => observed.push(n),
    ...(opts.inlineEmbeddingsMaxBytes !== undefined ? { inlineEmbeddingsMaxBytes: opts.inlineEmbeddingsMaxBytes } : {}),
  });
  return { store, blobs, jobs, backend, observed, run };
}

const expectedEmbeddings = (seed: number, n: number) => Float32Array.from(Array.from({ length: n }, (_, i) => embeddingOf(imageSeed(seed, i))).flat());

describe("prior processor", () => {
  it("samples one item per image with the job's derived seeds, moves the job to DECODING and hands it to its decode queue", async () => {
    const { run, store, jobs, backend, blobs, observed } = setUp();
    const task = queuedJob(store, { numImages: 3, seed: 11 });
    expect(await run(task)).toBe("done");

    expect(backend.calls).toHaveLength(1);
    expect(backend.calls[0]).toMatchObject({
      version: "demo-v1",
      userIds: ["alice", "alice", "alice"],
      seeds: [0, 1, 2].map((i) => imageSeed(11, i)),
      guidance: 3,
      steps: 50,
      sampler: "ddim",
    });
    expect(store.records.get(task.jobId)!.state).toBe("decoding");
    expect(store.moves).toEqual(["sampling", "decoding"]);
    expect(jobs.added).toHaveLength(1);
    const decode = jobs.added[0]!;
    expect(decode).toMatchObject({ queue: stageQueue("decode", "acme", "interactive"), name: "decode", opts: { jobId: task.jobId } });
    const data = decode.data as DecodeTask;
    expect(data).toMatchObject({
      jobId: task.jobId,
      embeddingDim: DIM,
      seeds: [0, 1, 2].map((i) => imageSeed(11, i)),
      embeddingsKey: objectKeys.embeddings("acme", task.jobId),
    });
    // Small embeddings ride inline: no S3 write on this stage.
    expect(decodeEmbeddings(fromInlineEmbeddings(data.embeddings!))).toEqual(expectedEmbeddings(11, 3));
    expect(blobs.objects.size).toBe(0);
    // The decode hop continues the job's trace with a span of its own.
    expect(data.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(data.traceparent).not.toBe(task.traceparent);
    expect(observed).toEqual([3]);
  });

  it("stores embeddings over the inline limit in S3 under the job's key, and sends only the key", async () => {
    const { run, store, jobs, blobs } = setUp({ inlineEmbeddingsMaxBytes: 8 });
    const task = queuedJob(store, { numImages: 2 });
    expect(await run(task)).toBe("done");
    const data = jobs.added[0]!.data as DecodeTask;
    expect(data.embeddings).toBeUndefined();
    expect(decodeEmbeddings(blobs.objects.get(objectKeys.embeddings("acme", task.jobId))!)).toEqual(expectedEmbeddings(7, 2));
  });

  it("redelivered after a crash in DECODING, samples again and re-sends the same hand-off without moving the job", async () => {
    const first = setUp();
    const task = queuedJob(first.store);
    await first.run(task);
    const sent = first.jobs.added[0]!;

    // The job is DECODING but the hand-off may be lost: a redelivery must re-send it.
    const again = setUp();
    again.store.records.set(task.jobId, first.store.records.get(task.jobId)!);
    expect(await again.run(task)).toBe("done");
    expect(again.store.moves).toEqual([]);
    expect(again.jobs.added).toHaveLength(1);
    const resent = again.jobs.added[0]!;
    expect(resent.opts.jobId).toBe(sent.opts.jobId);
    expect((resent.data as DecodeTask).embeddings).toBe((sent.data as DecodeTask).embeddings);
  });

  it("skips a cancelled or finished job without sampling", async () => {
    const { run, store, jobs, backend } = setUp();
    const task = queuedJob(store);
    await store.transition(task.jobId, "cancelled");
    expect(await run(task)).toBe("skipped");
    expect(backend.calls).toHaveLength(0);
    expect(jobs.added).toHaveLength(0);
  });

  it("fails a job whose user the model does not know under unknown_user=REJECT, and hands nothing on", async () => {
    const { run, store, jobs } = setUp();
    const task = queuedJob(store, { userId: "mallory" });
    expect(await run(task)).toBe("done");
    const record = store.records.get(task.jobId)!;
    expect(record.state).toBe("failed");
    expect(record.error).toMatchObject({ code: "UNKNOWN_USER" });
    expect(record.error!.message).toContain("unknown_user=POPULATION");
    expect(jobs.added).toHaveLength(0);
  });

  it("serves an unknown user from the population prior under POPULATION and records that it did", async () => {
    const { run, store, jobs } = setUp();
    const task = queuedJob(store, { userId: "mallory", unknownUser: "population" });
    expect(await run(task)).toBe("done");
    expect(store.records.get(task.jobId)!).toMatchObject({ state: "decoding", populationPrior: true });
    expect(jobs.added).toHaveLength(1);
  });

  it("stops sampling when the job is cancelled meanwhile, and hands nothing on", async () => {
    const { run, store, jobs, backend } = setUp({ hold: true });
    const task = queuedJob(store);
    const running = run(task);
    while (backend.calls.length === 0) await new Promise((r) => setImmediate(r));
    await store.transition(task.jobId, "cancelled");
    expect(await running).toBe("skipped");
    expect(store.records.get(task.jobId)!.state).toBe("cancelled");
    expect(jobs.added).toHaveLength(0);
  });

  it("refuses a model version this worker does not serve, for good", async () => {
    const { run, store } = setUp();
    const task = queuedJob(store, { modelVersion: "demo-v9" });
    await expect(run(task)).rejects.toBeInstanceOf(UnrecoverableError);
    expect(store.records.get(task.jobId)!.state).toBe("queued");
  });
});
