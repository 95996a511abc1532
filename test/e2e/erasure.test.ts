/**
 * DeleteUserData end to end on real Redis, s3rver and the services: a user with outputs in 5 jobs
 * and 3 batches is erased everywhere (checked by listing and grepping every Redis key and every
 * object), the receipt counts what went, later requests get what the tenant chose, a repeat is
 * harmless, another tenant is untouched, and a data worker killed midway resumes.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chunksOf,
  createBatchClient,
  createDataClient,
  createJobClient,
  REPO_ROOT,
  startStack,
  startWebhookReceiver,
  type BatchClient,
  type DataClient,
  type JobClient,
  type Stack,
  type WebhookReceiver,
} from "@rebeca/devstack";
import { Redis } from "ioredis";
import { decodeEmbeddings, objectKeys } from "@rebeca/contracts";
import { publishVersionDir, readPublishedFiles, type RegistryDeps } from "@rebeca/registry";
import { createS3BlobStore, createS3Client } from "@rebeca/storage";
import { JobState } from "@rebeca/contracts/grpc";
import { AfterErasure, UserDataDeletionState, type UserDataDeletion } from "@rebeca/contracts/grpc-data";
import { grpcError } from "../support/grpc-errors.js";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";
import { s3Of } from "../support/invariants.js";
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
    s3 = s3Of(stack);
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

  async function finishedJob(userId: string, requestId: string, client = jobs, callbackUrl = "") {
    const { job } = await client.createJob({ requestId, userId, numImages: IMAGES, seed: 7, callbackUrl });
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
    // Two jobs and one batch tell a "feed" endpoint about their outputs: it must hear of the erasure.
    const feed = `${receiver.url}/feed`;
    for (let i = 0; i < 5; i++) done.push(await finishedJob(victim, `v-job-${i}`, jobs, i < 2 ? feed : ""));
    expect(done.every((j) => j.state === JobState.JOB_STATE_SUCCEEDED)).toBe(true);
    const batchIds: string[] = [];
    for (let b = 0; b < 3; b++) {
      // The victim sits at a different position in each batch, with others around it in its shard.
      const ids = users.slice(0, 6).filter((u) => u !== victim);
      ids.splice(b + 1, 0, victim);
      const created = await batches.createBatch({ requestId: `v-batch-${b}`, numImages: IMAGES, seed: b, callbackUrl: b === 0 ? feed : "" }, chunksOf(ids, 10));
      batchIds.push((await untilBatchCompleted(batches, created.batchId)).batchId);
    }
    const globexJob = await finishedJob(victim, "g-job", globexJobs);
    expect(globexJob.state).toBe(JobState.JOB_STATE_SUCCEEDED);

    // The checks below can fail: before the erasure the victim is all over Redis and S3.
    const before = await leftovers(victim);
    expect(before.redis.length).toBeGreaterThan(5);
    expect(before.objects.length).toBeGreaterThanOrEqual(6);
    const bucketBefore = await dumpBucket(s3, stack.s3.bucket);
    // The registry is in use: the model the jobs ran on is published there, the victim's row in it.
    const redis = new Redis(stack.redis.url);
    const registry: RegistryDeps = {
      blobs: createS3BlobStore(
        createS3Client({ bucket: stack.s3.bucket, endpoint: stack.s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }),
        stack.s3.bucket,
      ),
      redis,
      objectPrefix: "registry",
      redisPrefix: stack.prefix,
    };
    await publishVersionDir(registry, `${REPO_ROOT}models/demo-v1`, { actor: "test" });

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
      modelVersionsRewritten: 1,
    });
    // Every file of the registry's version, downloaded and checked against its index and pointer:
    // the victim's row is zero and their id is gone; every other row is as published.
    const revised = await readPublishedFiles(registry, "demo-v1");
    const pointer = JSON.parse((await redis.hget(`${stack.prefix}:models:versions`, "demo-v1"))!) as { indexSha256: string };
    expect(
      createHash("sha256")
        .update(await object("registry/models/demo-v1/registry.json"))
        .digest("hex"),
    ).toBe(pointer.indexSha256);
    for (const [path, bytes] of revised) expect(mentions(Buffer.from(bytes).toString("latin1"), victim), path).toBe(false);
    const manifest = JSON.parse(new TextDecoder().decode(revised.get("manifest.json"))) as { user_dim: number; users: { null_row: number } };
    const line = modelUserIds().indexOf(victim);
    const row = line >= manifest.users.null_row ? line + 1 : line;
    const table = new Float32Array(new Uint8Array(revised.get("user_table.f32")!).buffer);
    const original = new Float32Array(new Uint8Array(readFileSync(`${REPO_ROOT}models/demo-v1/user_table.f32`)).buffer);
    const rowOf = (t: Float32Array, r: number) => [...t.subarray(r * manifest.user_dim, (r + 1) * manifest.user_dim)];
    expect(rowOf(original, row).some((v) => v !== 0)).toBe(true);
    expect(rowOf(table, row).every((v) => v === 0)).toBe(true);
    expect(table.length).toBe(original.length);
    for (const r of [0, row + 1]) expect(rowOf(table, r)).toEqual(rowOf(original, r));
    await redis.quit();
    // Finished BullMQ entries are kept an hour (removeOnComplete): the 5 jobs' prior and decode entries at least.
    expect(receipt.counts!.queueEntries).toBeGreaterThanOrEqual(10);

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
    // Delivered callbacks cannot be recalled: the feed endpoint is told which outputs to delete copies of.
    const erased = receiver.received.filter((w) => JSON.parse(w.body).type === "user_data.erased");
    expect(erased.map((w) => w.url)).toEqual(["/hooks/feed"]);
    const told = JSON.parse(erased[0]!.body).data;
    expect(told).toMatchObject({ deletion_id: deletion!.deletionId, batch_ids: [batchIds[0]] });
    expect([...told.job_ids].sort()).toEqual([done[0]!.jobId, done[1]!.jobId].sort());
    expect(erased[0]!.body).not.toContain(victim);
  });

  it("is idempotent: a repeated request returns the first erasure, a new one finds nothing left", async () => {
    const first = await data.deleteUserData({ requestId: "erase-1", userIds: [victim] });
    expect(first.deduplicated).toBe(true);
    expect(first.deletion!.state).toBe(UserDataDeletionState.USER_DATA_DELETION_STATE_SUCCEEDED);
    const again = await data.deleteUserData({ requestId: "erase-1-again", userIds: [victim] });
    expect(again.deduplicated).toBe(false);
    const receipt = await untilErased(data, again.deletion!.deletionId);
    expect(receipt.state).toBe(UserDataDeletionState.USER_DATA_DELETION_STATE_SUCCEEDED);
    expect(Object.values(receipt.counts!).every((n) => n === 0)).toBe(true);

    // In a later batch the model no longer knows them: refused under the batch's default unknown_user=REJECT.
    const later = await batches.createBatch({ requestId: "after-erasure-batch", numImages: IMAGES }, chunksOf([users[0]!, victim], 10));
    const laterBatch = await untilBatchCompleted(batches, later.batchId);
    const laterLines = (await dumpBucket(s3, stack.s3.bucket))
      .get(objectKeys.batchManifest("acme", laterBatch.batchId))!
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(laterLines.map((l) => [l.user_id, l.error?.code ?? "ok"])).toEqual([
      [users[0], "ok"],
      [victim, "USER_ERASED"],
    ]);
  });

  it("refuses another tenant's manifest and erasure ids, and bad requests, changing nothing", async () => {
    const globexJob = await finishedJob(users[9]!, "g-untouched", globexJobs);
    await s3.send(new PutObjectCommand({ Bucket: stack.s3.bucket, Key: "tenants/globex/erase.txt", Body: `${users[9]}\n` }));
    const foreign = await grpcError(() => data.deleteUserData({ requestId: "steal", manifestUri: `s3://${stack.s3.bucket}/tenants/globex/erase.txt` }));
    expect(foreign.code).toBe(status.INVALID_ARGUMENT);
    expect(foreign.details).toContain("tenants/acme/");
    const theirs = await globexData.deleteUserData({ requestId: "g-erase", userIds: ["nobody-here"] });
    expect(await grpcError(() => data.getUserDataDeletion(theirs.deletion!.deletionId))).toMatchObject({ code: status.NOT_FOUND });
    for (const bad of [
      { requestId: "", userIds: ["a"] },
      { requestId: "both", userIds: ["a"], manifestUri: `s3://${stack.s3.bucket}/tenants/acme/x.txt` },
      { requestId: "neither" },
      { requestId: "bad-id", userIds: ["has space"] },
    ])
      expect((await grpcError(() => data.deleteUserData(bad))).code).toBe(status.INVALID_ARGUMENT);
    expect((await globexJobs.getJob(globexJob.jobId)).job!.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect((await globexJobs.createJob({ requestId: "g-still-served", userId: users[9]! })).job).toBeDefined();
  });

  it("serves an erased user from the population prior when the tenant asks for that", async () => {
    const user = users[7]!;
    const { deletion } = await data.deleteUserData({ requestId: "erase-pop", userIds: [user], afterErasure: AfterErasure.AFTER_ERASURE_POPULATION });
    expect((await untilErased(data, deletion!.deletionId)).state).toBe(UserDataDeletionState.USER_DATA_DELETION_STATE_SUCCEEDED);
    const job = await finishedJob(user, "pop-after-erasure");
    expect(job).toMatchObject({ state: JobState.JOB_STATE_SUCCEEDED, populationPrior: true });
    // Without the erasure the same user is served from their own row.
    expect(await finishedJob(users[8]!, "own-row")).toMatchObject({ populationPrior: false });
  });

  it("cancels queued work and survives a data worker SIGKILL midway (a manifest of 200 users, 2 per step)", async () => {
    const withData = users.slice(20, 24);
    for (const [i, u] of withData.entries()) expect((await finishedJob(u, `k-${i}`)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    // A queued job: no prior worker is running while it waits.
    await stack.services["prior-worker"]!.process.stop();
    const { job: queued } = await jobs.createJob({ requestId: "k-queued", userId: withData[0]!, numImages: IMAGES });
    expect(queued!.state).toBe(JobState.JOB_STATE_QUEUED);

    const ids = [...withData, ...Array.from({ length: 196 }, (_, i) => `never-seen-${i}`)];
    await s3.send(new PutObjectCommand({ Bucket: stack.s3.bucket, Key: "tenants/acme/forget.txt", Body: ids.join("\n") + "\n" }));
    const worker = stack.services["data-worker"]!;
    const { deletion } = await data.deleteUserData({ requestId: "erase-many", manifestUri: `s3://${stack.s3.bucket}/tenants/acme/forget.txt` });
    expect(deletion!.totalUsers).toBe(200);
    await worker.process.waitFor((line) => (line.includes("erasure chunk done") && line.includes(deletion!.deletionId) ? true : undefined), 60_000);
    await worker.process.kill();
    const midway = (await data.getUserDataDeletion(deletion!.deletionId)).deletion!;
    expect(midway.state).toBe(UserDataDeletionState.USER_DATA_DELETION_STATE_RUNNING);
    expect(midway.doneUsers).toBeGreaterThan(0);
    expect(midway.doneUsers).toBeLessThan(200);

    await stack.start("data-worker", { ERASE_CHUNK_USERS: "2", ERASE_LOCK_MS: "2000" });
    const receipt = await untilErased(data, deletion!.deletionId);
    expect(receipt).toMatchObject({ state: UserDataDeletionState.USER_DATA_DELETION_STATE_SUCCEEDED, doneUsers: 200 });
    expect(receipt.counts!.jobsCancelled).toBe(1);
    // The chunk the kill interrupted may have deleted before it could count: at least the first chunk's are counted.
    expect(receipt.counts!.jobRecords).toBeGreaterThanOrEqual(2);
    expect(receipt.counts!.jobRecords).toBeLessThanOrEqual(5);
    expect(await grpcError(() => jobs.getJob(queued!.jobId))).toMatchObject({ code: status.NOT_FOUND });
    // Only the tenant's own list of ids to erase is left (theirs to delete; docs/security.md).
    for (const u of withData) expect(await leftovers(u, "acme", { name: "globex", jobIds: [] })).toEqual({ redis: [], objects: ["tenants/acme/forget.txt"] });
  });
});
