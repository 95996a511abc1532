/**
 * DeleteUserData end to end on real Redis, s3rver and the services: a user with outputs in 5 jobs
 * and 3 batches is erased everywhere (checked by listing and grepping every Redis key and every
 * object), the receipt counts what went, later requests get what the tenant chose, a repeat is
 * harmless, another tenant is untouched, and a data worker killed midway resumes.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import {
  chunksOf,
  createBatchClient,
  createDataClient,
  createJobClient,
  startStack,
  startWebhookReceiver,
  type BatchClient,
  type DataClient,
  type JobClient,
  type Stack,
  type WebhookReceiver,
} from "@rebeca/devstack";
import { decodeEmbeddings, objectKeys } from "@rebeca/contracts";
import { JobState, UnknownUserPolicy } from "@rebeca/contracts/grpc";
import { AfterErasure, UserDataDeletionState, type UserDataDeletion } from "@rebeca/contracts/grpc-data";
import { grpcError } from "../support/grpc-errors.js";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";
import { dumpBucket, dumpRedis, mentions } from "../support/everything.js";

const SHARD = 4;
const IMAGES = 2;

describe("user-data erasure", () => {
  let stack: Stack;
  let jobs: JobClient;
  let batches: BatchClient;
  let data: DataClient;
  let globexJobs: JobClient;
  let globexData: DataClient;
  let s3: S3Client;
  let receiver: WebhookReceiver;
  const users = modelUserIds();
  const victim = users[5]!;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({
      services: ["gateway", "prior-worker", "decoder-worker", "notifier", "data-worker"],
      env: { gateway: { SHARD_SIZE: String(SHARD) }, "data-worker": { ERASE_CHUNK_USERS: "2", ERASE_LOCK_MS: "2000" } },
    });
    jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    data = createDataClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    globexJobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    globexData = createDataClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    s3 = new S3Client({
      endpoint: stack.s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  });
  afterAll(async () => {
    for (const c of [jobs, batches, data, globexJobs, globexData]) c?.close();
    await stack?.stop();
    await receiver?.close();
  });

  async function untilErased(client: DataClient, deletionId: string, timeoutMs = 120_000): Promise<UserDataDeletion> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = (await client.getUserDataDeletion(deletionId)).deletion!;
      if (d.state !== UserDataDeletionState.USER_DATA_DELETION_STATE_RUNNING) return d;
      if (Date.now() > deadline) throw new Error(`erasure ${deletionId} still running: ${JSON.stringify(d)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function object(key: string): Promise<Uint8Array> {
    const out = await s3.send(new GetObjectCommand({ Bucket: stack.s3.bucket, Key: key }));
    return await out.Body!.transformToByteArray();
  }

  async function finishedJob(userId: string, requestId: string, client = jobs) {
    const { job } = await client.createJob({ requestId, userId, numImages: IMAGES, seed: 7 });
    return untilJobDone(client, job!.jobId);
  }

  /** Everything in Redis and S3 that names `userId`, less the two records erasure keeps on purpose. */
  async function leftovers(userId: string, tenant = "acme", otherTenant = { name: "globex", jobIds: [] as string[] }) {
    const kept = [`${stack.prefix}:erased:${tenant}`, `${stack.prefix}:erasure-users:`];
    // The other tenant's user of the same id is another person: theirs stays.
    const theirs = (key: string) => key.includes(`:${otherTenant.name}`) || otherTenant.jobIds.some((id) => key.includes(id));
    const redis = [...(await dumpRedis(stack.redis.url))].filter(
      ([key, value]) => !kept.some((k) => key.startsWith(k)) && !theirs(key) && (mentions(key, userId) || mentions(value, userId)),
    );
    const objects = [...(await dumpBucket(s3, stack.s3.bucket))].filter(([key, body]) => key.includes(`/${tenant}/`) && mentions(body, userId));
    return { redis: redis.map(([k]) => k), objects: objects.map(([k]) => k) };
  }

  it("erases a user with outputs in 5 jobs and 3 batches everywhere, with a receipt, and refuses their next request", async () => {
    const done = [];
    for (let i = 0; i < 5; i++) done.push(await finishedJob(victim, `v-job-${i}`));
    expect(done.every((j) => j.state === JobState.JOB_STATE_SUCCEEDED)).toBe(true);
    const batchIds: string[] = [];
    for (let b = 0; b < 3; b++) {
      // The victim sits at a different position in each batch, with others around it in its shard.
      const ids = users.slice(0, 6).filter((u) => u !== victim);
      ids.splice(b + 1, 0, victim);
      const created = await batches.createBatch({ requestId: `v-batch-${b}`, numImages: IMAGES, seed: b }, chunksOf(ids, 10));
      batchIds.push((await untilBatchCompleted(batches, created.batchId)).batchId);
    }
    const globexJob = await finishedJob(victim, "g-job", globexJobs);
    expect(globexJob.state).toBe(JobState.JOB_STATE_SUCCEEDED);

    // The checks below can fail: before the erasure the victim is all over Redis and S3.
    const before = await leftovers(victim);
    expect(before.redis.length).toBeGreaterThan(5);
    expect(before.objects.length).toBeGreaterThanOrEqual(6);
    const bucketBefore = await dumpBucket(s3, stack.s3.bucket);

    const { deletion, deduplicated } = await data.deleteUserData({
      requestId: "erase-1",
      userIds: [victim],
      afterErasure: AfterErasure.AFTER_ERASURE_REJECT,
      callbackUrl: receiver.url,
    });
    expect(deduplicated).toBe(false);
    const receipt = await untilErased(data, deletion!.deletionId);
    expect(receipt).toMatchObject({ state: UserDataDeletionState.USER_DATA_DELETION_STATE_SUCCEEDED, totalUsers: 1, doneUsers: 1 });
    expect(receipt.counts).toMatchObject({
      jobsCancelled: 0,
      jobRecords: 5,
      images: 5 * IMAGES + 3 * IMAGES,
      // One embeddings object per job, and the victim's rows of one shard per batch.
      embeddings: 5 + 3 * IMAGES,
      // The victim's line in each batch manifest and in each shard result.
      manifestLines: 3 + 3,
      // job.queued, sampling, decoding, succeeded per job.
      events: 5 * 4,
    });
    expect(receipt.counts!.queueEntries).toBeGreaterThanOrEqual(5);

    const after = await leftovers(victim, "acme", { name: "globex", jobIds: [globexJob.jobId] });
    expect(after).toEqual({ redis: [], objects: [] });
    // The victim's objects are gone by key too (keys hold job ids and positions, not user ids).
    const bucketAfter = await dumpBucket(s3, stack.s3.bucket);
    for (const j of done) expect([...bucketAfter.keys()].filter((k) => k.includes(j.jobId))).toEqual([]);
    for (const [b, batchId] of batchIds.entries()) {
      expect([...bucketAfter.keys()].filter((k) => k.startsWith(`tenants/acme/batches/${batchId}/users/${b + 1}/`))).toEqual([]);
      // Everyone else's images and lines are still there.
      expect([...bucketAfter.keys()].filter((k) => k.startsWith(`tenants/acme/batches/${batchId}/users/0/`))).toHaveLength(IMAGES);
      const manifestKey = objectKeys.batchManifest("acme", batchId);
      expect(bucketAfter.get(manifestKey)!.trim().split("\n")).toHaveLength(5);
      expect(bucketBefore.get(manifestKey)!.trim().split("\n")).toHaveLength(6);
      // The shard's embeddings keep their shape; the victim's rows are zeros, the others' are not.
      const emb = decodeEmbeddings(await object(objectKeys.shardEmbeddings("acme", batchId, 0)));
      const dim = emb.length / (SHARD * IMAGES);
      const rowSums = Array.from({ length: SHARD * IMAGES }, (_, r) => emb.subarray(r * dim, (r + 1) * dim).reduce((a, v) => a + Math.abs(v), 0));
      rowSums.forEach((sum, r) => (Math.floor(r / IMAGES) === b + 1 ? expect(sum).toBe(0) : expect(sum).toBeGreaterThan(0)));
    }
    for (const j of done) expect(await grpcError(() => jobs.getJob(j.jobId))).toMatchObject({ code: status.NOT_FOUND });
    expect((await globexJobs.getJob(globexJob.jobId)).job!.state).toBe(JobState.JOB_STATE_SUCCEEDED);

    const refused = await grpcError(() => jobs.createJob({ requestId: "after-erasure", userId: victim }));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toMatch(/erased/);

    await receiver.until((all) => all.some((w) => JSON.parse(w.body).type === "user_data.deleted"));
    const callback = JSON.parse(receiver.received.find((w) => JSON.parse(w.body).type === "user_data.deleted")!.body);
    expect(callback.data).toMatchObject({ deletion_id: deletion!.deletionId, state: "succeeded", counts: { job_records: 5, manifest_lines: 6 } });
    expect(JSON.stringify(callback)).not.toContain(victim);
  });
});
