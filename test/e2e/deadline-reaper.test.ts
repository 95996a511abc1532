// The deadline reaper end to end on real Redis, S3 and processes: with no prior or decoder worker
// running, a job and a batch whose deadlines pass while they wait in their queues still end EXPIRED
// soon after the deadline (event, callback, the monitor's metrics, the batch's counts and its
// manifest), and leave the queues: workers started afterwards never run them.
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chunksOf,
  createBatchClient,
  createJobClient,
  startStack,
  startWebhookReceiver,
  type BatchClient,
  type JobClient,
  type Stack,
  type WebhookReceiver,
} from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { shardJobId } from "@rebeca/contracts";
import { collect } from "../support/events.js";
import { untilJobDone } from "../support/wait.js";
import { metricSum } from "../support/metrics.js";
import { modelUserIds } from "../support/world.js";

/** How long after its deadline queued work must have ended: the sweep interval plus a loaded machine's slack. */
const BOUND_MS = 5000;

describe("deadline reaper", () => {
  let stack: Stack;
  let jobs: JobClient;
  let batches: BatchClient;
  let receiver: WebhookReceiver;
  const users = modelUserIds();

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({
      services: ["gateway", "notifier", "monitor"],
      env: {
        gateway: { SHARD_SIZE: "4" },
        monitor: { MONITOR_SAMPLE_RATE: "0", DEADLINE_SWEEP_INTERVAL_MS: "200" },
      },
    });
    jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
  });
  afterAll(async () => {
    jobs?.close();
    batches?.close();
    await stack?.stop();
    await receiver?.close();
  });

  const monitorMetrics = async () => (await fetch(`http://127.0.0.1:${stack.services.monitor!.httpPort}/metrics`)).text();
  const callbackOf = (type: string, id: string) =>
    receiver.received.find((r) => {
      const body = JSON.parse(r.body) as { type: string; data: { job_id?: string; batch_id?: string } };
      return body.type === type && (body.data.job_id === id || body.data.batch_id === id);
    });
  /** Whether a BullMQ job with this id is anywhere in the tenant's queue (any state). */
  async function inQueue(queueName: string, id: string): Promise<boolean> {
    const queue = new Queue(queueName, { connection: { url: stack.redis.url }, prefix: stack.prefix });
    try {
      return (await queue.getJob(id)) !== undefined;
    } finally {
      await queue.close();
    }
  }

  it("work past its deadline in a queue nobody serves ends EXPIRED on time, and a later worker never runs it", async () => {
    const job = (await jobs.createJob({ requestId: "reap-job", userId: users[0]!, numImages: 1, deadline: "2s", callbackUrl: receiver.url })).job!;
    const batch = await batches.createBatch(
      { requestId: "reap-batch", numImages: 1, deadline: "2s", callbackUrl: receiver.url },
      chunksOf(users.slice(0, 10), 10),
    );
    const jobEvents = collect(jobs.watchEvents({ afterEventId: "0", jobId: job.jobId }));
    const jobDeadline = Date.parse(job.deadline);
    const batchDeadline = Date.parse(batch.parameters!.deadline);
    // Queued and not yet due: the work sits in the prior queues (a job under its id, shards under theirs).
    expect(await inQueue("prior.acme", job.jobId)).toBe(true);
    expect(await inQueue("prior-batch.acme", shardJobId(batch.batchId, 0))).toBe(true);

    await receiver.until(() => !!callbackOf("job.expired", job.jobId) && !!callbackOf("batch.expired", batch.batchId), 30_000);
    // The reaper acts on its deadline, never before it, and within the bound after it.
    const jobCallback = callbackOf("job.expired", job.jobId)!;
    const batchCallback = callbackOf("batch.expired", batch.batchId)!;
    expect(jobCallback.receivedAt).toBeGreaterThanOrEqual(jobDeadline);
    expect(jobCallback.receivedAt - jobDeadline).toBeLessThanOrEqual(BOUND_MS);
    expect(batchCallback.receivedAt - batchDeadline).toBeLessThanOrEqual(BOUND_MS);

    const expiredJob = (await jobs.getJob(job.jobId)).job!;
    expect(expiredJob.state).toBe(JobState.JOB_STATE_EXPIRED);
    expect(expiredJob.error!.code).toBe("DEADLINE_EXCEEDED");
    const expiredBatch = await batches.getBatch(batch.batchId);
    expect(expiredBatch.state).toBe(BatchState.BATCH_STATE_EXPIRED);
    expect(expiredBatch.counts).toMatchObject({ expired: 10, succeeded: 0, failed: 0, queued: 0 });
    // The manifest of what was done exists (and lists nobody: nothing ran).
    expect(expiredBatch.resultManifestUri).toMatch(/results\.jsonl$/);
    const body = JSON.parse(batchCallback.body) as { data: { state: string; counts: { expired: number; total: number } } };
    expect(body.data).toMatchObject({ state: "expired", counts: { expired: 10, total: 10 } });

    const metrics = await monitorMetrics();
    expect(metricSum(metrics, "rebeca_deadline_reaped_total", { kind: "job" })).toBe(1);
    expect(metricSum(metrics, "rebeca_deadline_reaped_total", { kind: "shard" })).toBe(3); // 10 users in shards of 4
    expect(metricSum(metrics, "rebeca_deadline_reaped_total", { kind: "batch" })).toBe(1);
    expect(metricSum(metrics, "rebeca_jobs_finished_total", { state: "expired" })).toBe(1);
    expect(metricSum(metrics, "rebeca_deadline_due_items")).toBe(0);

    // Out of the queues: nothing is left for a worker to take.
    expect(await inQueue("prior.acme", job.jobId)).toBe(false);
    for (let s = 0; s < 3; s++) expect(await inQueue("prior-batch.acme", shardJobId(batch.batchId, s))).toBe(false);

    // Workers start now; a fresh job runs through them, the expired work does not.
    await stack.start("prior-worker");
    await stack.start("decoder-worker");
    const fresh = (await jobs.createJob({ requestId: "reap-fresh", userId: users[1]!, numImages: 1 })).job!;
    expect((await untilJobDone(jobs, fresh.jobId, 120_000)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await jobs.getJob(job.jobId)).job!.state).toBe(JobState.JOB_STATE_EXPIRED);
    expect((await batches.getBatch(batch.batchId)).counts).toMatchObject({ expired: 10, succeeded: 0 });
    // Its whole history, live since it was created: queued, expired, and nothing after.
    jobEvents.close();
    expect(jobEvents.events.map((e) => e.type)).toEqual(["job.queued", "job.expired"]);
  }, 240_000);
});
