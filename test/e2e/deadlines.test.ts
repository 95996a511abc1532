// Deadlines and start windows end to end on real Redis, S3 and processes: a batch whose deadline
// falls mid-run ends EXPIRED with a manifest of exactly what was done; no decoder call starts after
// the deadline (read from the decoder worker's metrics); start_after holds work, out of the
// autoscaling backlog, until its time; bad windows are refused with nothing written.
import { createHash } from "node:crypto";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type BatchClient, type JobClient, type Stack } from "@rebeca/devstack";
import { BatchState, type Batch } from "@rebeca/contracts/grpc-batches";
import { JobState } from "@rebeca/contracts/grpc";
import type { UserResult } from "@rebeca/contracts";
import { collect } from "../support/events.js";
import { fieldViolations, grpcError } from "../support/grpc-errors.js";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";
import { metricSum } from "../support/metrics.js";
import { s3Of } from "../support/invariants.js";
import { modelUserIds } from "../support/world.js";

const SHARD = 16;
const CHUNK = 4;
const DECODER_CONCURRENCY = 2;

describe("deadlines and start windows", () => {
  let stack: Stack;
  let batches: BatchClient;
  let jobs: JobClient;
  let s3: S3Client;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({
      services: ["gateway", "prior-worker", "decoder-worker"],
      env: {
        gateway: { SHARD_SIZE: String(SHARD) },
        "decoder-worker": { DECODE_CHUNK_IMAGES: String(CHUNK), CONCURRENCY: String(DECODER_CONCURRENCY) },
      },
    });
    batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    s3 = s3Of(stack);
  });
  afterAll(async () => {
    batches?.close();
    jobs?.close();
    await stack?.stop();
  });

  const scrape = async (service: "gateway" | "decoder-worker") => (await fetch(`http://127.0.0.1:${stack.services[service]!.httpPort}/metrics`)).text();

  async function object(uri: string): Promise<Buffer> {
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  it("a batch whose deadline falls mid-run ends EXPIRED with a manifest of exactly what was done", async () => {
    // The batch must be partly done at its deadline, whatever the machine's speed and load right
    // now: a calibration batch measures the pipeline's rate, and the batch is sized to take about
    // twenty times its deadline at that rate (a small batch's rate understates a large one's: by
    // more than 5× once the prior merged its calls and the decoder's PUTs got lean). What is left at
    // the deadline is expired, not run, so a bigger batch costs only its intake.
    const t0 = Date.now();
    const calibration = await batches.createBatch({ requestId: "calibrate", numImages: 2 }, chunksOf(users.slice(0, 6 * SHARD), 6 * SHARD));
    await untilBatchCompleted(batches, calibration.batchId, 120_000);
    const rate = (6 * SHARD) / ((Date.now() - t0) / 1000);
    const WINDOW_S = 8;
    const size = Math.min(80_000, Math.max(800, Math.round(rate * WINDOW_S * 20)));
    const ids = Array.from({ length: size }, (_, i) => (i % 97 === 5 ? `nobody-${i}` : users[i % users.length]!));
    const watch = collect(jobs.watchEvents({ afterEventId: "0", types: ["batch.expired", "batch.completed"] }));
    const created = await batches.createBatch({ requestId: "deadline-1", numImages: 2, seed: 7, deadline: `${WINDOW_S}s` }, chunksOf(ids, 1000));
    const deadline = Date.parse(created.parameters!.deadline);
    expect(deadline).toBeGreaterThan(Date.now());

    // The decoder's work as of the deadline, read the moment it passes.
    await new Promise((r) => setTimeout(r, deadline - Date.now()));
    const atDeadline = metricSum(await scrape("decoder-worker"), "rebeca_decoder_model_images_total");

    const events = await watch.until((es) => es.some((e) => e.batchId === created.batchId), 180_000);
    watch.close();
    const event = events.find((e) => e.batchId === created.batchId)!;
    expect(event.type).toBe("batch.expired");
    let batch: Batch = await batches.getBatch(created.batchId);
    expect(batch.state).toBe(BatchState.BATCH_STATE_EXPIRED);
    const c = batch.counts!;
    expect(c.expired).toBeGreaterThan(0);
    expect(c.succeeded).toBeGreaterThan(0);
    expect(c.succeeded + c.failed + c.expired + c.cancelled).toBe(ids.length);
    expect(c.queued).toBe(0);
    expect(event.batch).toMatchObject({ state: "expired", succeeded: c.succeeded, failed: c.failed, expired: c.expired });
    expect(event.batch!.resultManifestUri).toBe(batch.resultManifestUri);

    // The manifest lists every user that was done (succeeded or failed) and nobody else, in order.
    const lines = (await object(batch.resultManifestUri))
      .toString("utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as UserResult);
    expect(lines.filter((l) => l.images).length).toBe(c.succeeded);
    expect(lines.filter((l) => l.error).length).toBe(c.failed);
    for (const l of lines) expect(l.user_id).toBe(ids[l.position]);
    expect(lines.map((l) => l.position)).toEqual([...lines.map((l) => l.position)].sort((a, b) => a - b));
    // Lost 0 among what finished: every listed image is whole in S3 (its sha256 matches).
    for (const l of lines.filter((x) => x.images)) {
      expect(l.images).toHaveLength(2);
      for (const img of l.images!)
        expect(
          createHash("sha256")
            .update(await object(img.uri))
            .digest("hex"),
        ).toBe(img.sha256);
    }

    // No decoder call started after the deadline; work after it is at most the chunks in flight then.
    const after = await scrape("decoder-worker");
    expect(metricSum(after, "rebeca_decoder_model_last_call_start_timestamp_seconds") * 1000).toBeLessThanOrEqual(deadline);
    expect(metricSum(after, "rebeca_decoder_model_images_total") - atDeadline).toBeLessThanOrEqual(CHUNK * DECODER_CONCURRENCY);
    // And every image kept was decoded (decoded images beyond those: a user cut mid-chunk, < 2 per shard).
    expect(metricSum(after, "rebeca_decoder_model_images_total")).toBeGreaterThanOrEqual(2 * c.succeeded);

    batch = await batches.getBatch(created.batchId);
    expect(batch.state).toBe(BatchState.BATCH_STATE_EXPIRED);
  }, 360_000);

  it("start_after holds a job out of the runnable backlog until its time, then it runs", async () => {
    const created = (await jobs.createJob({ requestId: "held-1", userId: users[0]!, numImages: 1, startAfter: "4s" })).job!;
    const opens = Date.parse(created.startAfter);
    expect(opens - Date.now()).toBeGreaterThan(2000);
    // Scraped twice: the per-state gauge is filled from the same snapshot one scrape late.
    await scrape("gateway");
    const held = await scrape("gateway");
    const labels = { queue: "prior", tenant: "acme", class: "interactive" };
    expect(metricSum(held, "rebeca_queue_backlog_jobs", { ...labels, state: "delayed" })).toBe(1);
    expect(metricSum(held, "rebeca_queue_backlog_total_jobs", labels)).toBe(0);
    expect((await jobs.getJob(created.jobId)).job!.state).toBe(JobState.JOB_STATE_QUEUED);

    const done = await untilJobDone(jobs, created.jobId, 60_000);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(Date.parse(done.startTime)).toBeGreaterThanOrEqual(opens);
    expect(done.outputs).toHaveLength(1);
  }, 90_000);

  it("a batch with start_after holds its shards until then", async () => {
    const created = await batches.createBatch({ requestId: "held-batch", numImages: 1, startAfter: "3s" }, chunksOf(users.slice(0, 40), 40));
    const opens = Date.parse(created.parameters!.startAfter);
    await scrape("gateway");
    const held = await scrape("gateway");
    expect(metricSum(held, "rebeca_queue_backlog_jobs", { queue: "prior", tenant: "acme", class: "batch", state: "delayed" })).toBe(Math.ceil(40 / SHARD));
    expect(metricSum(held, "rebeca_queue_backlog_total_jobs", { queue: "prior", tenant: "acme", class: "batch" })).toBe(0);
    const watch = collect(jobs.watchEvents({ batchId: created.batchId, afterEventId: "0", types: ["batch.progress", "batch.completed"] }));
    const events = await watch.until((es) => es.some((e) => e.type === "batch.completed"), 60_000);
    watch.close();
    for (const e of events) expect(Date.parse(e.time)).toBeGreaterThanOrEqual(opens);
    expect((await batches.getBatch(created.batchId)).counts).toMatchObject({ total: 40, succeeded: 40, expired: 0 });
  }, 90_000);

  it("a job still held when its deadline passes ends EXPIRED without running", async () => {
    const startAfter = new Date(Date.now() + 2000).toISOString();
    const deadline = new Date(Date.parse(startAfter) + 1).toISOString();
    const created = (await jobs.createJob({ requestId: "late-1", userId: users[1]!, numImages: 1, startAfter, deadline, callbackEvents: [] })).job!;
    const done = await untilJobDone(jobs, created.jobId, 30_000);
    expect(done.state).toBe(JobState.JOB_STATE_EXPIRED);
    expect(done.error).toMatchObject({ code: "DEADLINE_EXCEEDED" });
    expect(done.startTime).toBe("");
    expect(done.outputs).toHaveLength(0);
    const watch = collect(jobs.watchEvents({ jobId: created.jobId, afterEventId: "0" }));
    const events = await watch.until((es) => es.some((e) => e.type === "job.expired"));
    watch.close();
    expect(events.map((e) => e.type)).toEqual(["job.queued", "job.expired"]);
  }, 60_000);

  it.each([
    [{ deadline: "2020-01-01T00:00:00Z" }, "deadline", /in the past/],
    [{ startAfter: "2h", deadline: "1h" }, "deadline", /after start_after/],
    [{ outputTtl: "5s" }, "output_ttl", /between 60 s/],
    [{ startAfter: "next tuesday" }, "start_after", /RFC 3339/],
  ])("refuses %j with a field violation and writes nothing", async (bad, field, description) => {
    const requestId = `bad-${field}-${Math.random().toString(36).slice(2, 8)}`;
    const err = await grpcError(() => jobs.createJob({ requestId, userId: users[0]!, numImages: 1, ...bad }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(err)).toEqual([expect.objectContaining({ field, description: expect.stringMatching(description) })]);
    const batchErr = await grpcError(() => batches.createBatch({ requestId, numImages: 1, ...bad }, chunksOf(users.slice(0, 2), 2)));
    expect(batchErr.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(batchErr)[0]!.field).toBe(`parameters.${field}`);
    // Nothing was stored under the request id: the same id with good values creates a new job.
    const fresh = await jobs.createJob({ requestId, userId: users[0]!, numImages: 1 });
    expect(fresh.deduplicated).toBe(false);
    expect((await batches.listBatches()).batches.some((b) => b.requestId === requestId)).toBe(false);
  });
});
