import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { JobState } from "@rebeca/contracts/grpc";
import type { UserResult } from "@rebeca/contracts";
import { modelUserIds } from "../support/world.js";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";

/*
 * Fault scenario (issue 5, first of the suite): prior and decoder workers are SIGKILLed at
 * random moments during a batch and during single jobs, and restarted. Every accepted job and
 * user must end exactly once with its output, with no duplicate objects. Locks are short here so
 * dead workers' jobs come back in seconds, not minutes.
 */
describe("faults: workers killed mid-batch", () => {
  let stack: Stack;
  let s3: S3Client;
  const users = modelUserIds();
  const fast = { LOCK_DURATION_MS: "3000", STALLED_INTERVAL_MS: "1000" };

  beforeAll(async () => {
    stack = await startStack({ env: { gateway: { SHARD_SIZE: "8" }, "prior-worker": fast, "decoder-worker": fast } });
    s3 = new S3Client({ endpoint: stack.s3.endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }, requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: stack.s3.bucket, Prefix: prefix, ContinuationToken: token }));
      out.push(...(page.Contents ?? []).map((c) => c.Key!));
      token = page.NextContinuationToken;
    } while (token);
    return out;
  }

  it("every user and job ends exactly once with its output, and no object is duplicated", async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const ids = Array.from({ length: 240 }, (_, i) => users[i % users.length]!);
    // DDPM (1000 steps) keeps the workers busy long enough for the kills to land mid-shard.
    const batch = await batches.createBatch({ requestId: "fault-1", numImages: 2, sampler: 2 }, chunksOf(ids, 50));
    const single = await Promise.all(Array.from({ length: 10 }, async (_, i) => (await jobs.createJob({ requestId: `fault-job-${i}`, userId: users[i]!, numImages: 2, steps: 200 })).job!.jobId));

    // Kill and restart each worker three times at random moments while work is in flight.
    const doneAtKill: number[] = [];
    for (let round = 0; round < 3; round++) {
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 400));
      doneAtKill.push((await batches.getBatch(batch.batchId)).shardsDone);
      const victim = round % 2 === 0 ? "prior-worker" : "decoder-worker";
      await stack.services[victim]!.process.kill();
      await stack.start(victim, fast);
    }

    // The kills landed mid-batch (else this test would prove nothing).
    expect(doneAtKill[0]).toBeLessThan(30);
    const final = await untilBatchCompleted(batches, batch.batchId);
    expect(final.state).toBe(BatchState.BATCH_STATE_COMPLETED);
    expect(final.counts).toMatchObject({ total: 240, succeeded: 240, failed: 0, cancelled: 0 });
    expect(final.shardsDone).toBe(30);

    const manifest = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: stack.s3.bucket, Key: final.resultManifestUri.replace(`s3://${stack.s3.bucket}/`, "") }))).Body!.transformToByteArray())
      .toString("utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as UserResult);
    expect(manifest.map((l) => l.position)).toEqual(ids.map((_, i) => i));
    expect(manifest.every((l) => l.images?.length === 2)).toBe(true);
    // Deterministic keys: exactly two images per user, however often a stage ran.
    const images = await keys(`tenants/acme/batches/${batch.batchId}/users/`);
    expect(images).toHaveLength(480);
    expect(new Set(images).size).toBe(480);

    for (const jobId of single) {
      const job = await untilJobDone(jobs, jobId);
      expect(job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect(job.outputs).toHaveLength(2);
      // One event per state: a redelivered stage never emitted its event twice.
      const events = await new Promise<string[]>((resolve, reject) => {
        const types: string[] = [];
        const stream = jobs.watchEvents({ jobId, afterEventId: "0" });
        stream.on("data", (r: { event?: { type: string } }) => {
          types.push(r.event!.type);
          if (r.event!.type === "job.succeeded") {
            stream.cancel();
            resolve(types);
          }
        });
        stream.on("error", (e: { code?: number }) => (e.code === 1 ? undefined : reject(e)));
      });
      expect(events).toEqual(["job.queued", "job.sampling", "job.decoding", "job.succeeded"]);
      expect(await keys(`tenants/globex/jobs/${jobId}/images/`)).toHaveLength(2);
    }
    batches.close();
    jobs.close();
  });
});
