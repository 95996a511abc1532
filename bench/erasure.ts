/*
 * User-data erasure (issue 17), on real Redis and s3rver, the eraser in this process:
 *
 * 1. One user (5 jobs × 2 images, 3 batches) erased in a bucket of BENCH_OBJECTS (default
 *    1,000,000) other objects of the same tenant. Baseline in the same run: the same erasure with
 *    the bucket holding only the user's own data. The per-user index means the erasure lists only
 *    the user's job prefixes; the ratio shows what the bucket's size still costs (on s3rver, a
 *    prefix listing reads each directory on the way, so the `jobs/` directory's size shows).
 *    The tenant's event stream holds BENCH_EVENTS (default 100,000, EVENTS_MAX_LEN) events of
 *    other users in both runs: the erasure scans it once per chunk.
 * 2. BENCH_ERASE_USERS (default 100,000) users erased as one erasure (BENCH_CHUNK per step, default 5,000), of which
 *    1,000 have a job with outputs: users/s. Baseline: the bare index lookups of the same users
 *    (pipelined SMEMBERS, chunks of 1,000), the least any erasure must do.
 * Filler objects are written straight into s3rver's data directory (its file layout), not
 * through the API, so a million of them take a minute rather than an hour.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { encodeEmbeddings, newId, objectKeys, redisKeys, type JobRecord } from "@rebeca/contracts";
import { createJobStore, newJobRecord } from "@rebeca/jobstore";
import { createBlobStore } from "@rebeca/storage";
import { createEraser, createErasureRunner, createErasureStore, createUserIndex, userDataKeys } from "@rebeca/userdata";
import { removeDir, startRedis, startS3 } from "@rebeca/devstack";
import { fmt, report } from "./stats.js";

const OBJECTS = Number(process.env.BENCH_OBJECTS ?? 1_000_000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const ERASE_USERS = Number(process.env.BENCH_ERASE_USERS ?? 100_000);
const WITH_DATA = Math.min(1000, ERASE_USERS);
/** Users per erasure step (ERASE_CHUNK_USERS of the data worker); each step scans the event stream once. */
const CHUNK = Number(process.env.BENCH_CHUNK ?? 5000);
const TENANT = "acme";
const PREFIX = "{bench}";

Object.assign(process.env, { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" });
const [redisServer, s3] = await Promise.all([startRedis(), startS3()]);
const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
const blobs = await createBlobStore({ S3_BUCKET: s3.bucket, S3_ENDPOINT: s3.endpoint, S3_REGION: "us-east-1", S3_CREATE_BUCKET: "false", BLOB_DIR: "" });
const store = createJobStore(redis, { prefix: PREFIX, eventsMaxLen: EVENTS + 1000 });
const index = createUserIndex(redis, PREFIX);
const queues = new Map<string, Queue>();
const queue = (name: string) => queues.get(name) ?? queues.set(name, new Queue(name, { connection: redis, prefix: PREFIX })).get(name)!;
const eraser = createEraser({ redis, blobs, store, prefix: PREFIX, queue });
const png = new Uint8Array(600).fill(7);
const spec = {
  numImages: 2,
  guidance: 3,
  steps: 10,
  sampler: "ddim" as const,
  spacing: "linspace" as const,
  seed: 1,
  modelVersion: "demo-v1",
  priority: 0,
  labels: {},
  callbackUrl: "",
  callbackEvents: [],
  unknownUser: "reject" as const,
};

/** A finished job of `userId` with its two images and embeddings in S3, indexed as CreateJob does. */
async function seedJob(userId: string, requestId: string): Promise<void> {
  const record = newJobRecord({ jobId: newId("job"), tenant: TENANT, requestId, spec: { ...spec, userId }, now: new Date().toISOString() });
  await index.admitJob(TENANT, userId, record.jobId);
  await store.create(record);
  await blobs.put(objectKeys.embeddings(TENANT, record.jobId), encodeEmbeddings(new Float32Array(2 * 16).fill(1)), "application/octet-stream");
  const outputs: JobRecord["outputs"] = [];
  for (let i = 0; i < 2; i++) {
    const uri = await blobs.put(objectKeys.image(TENANT, record.jobId, i), png, "image/png");
    outputs.push({ index: i, uri, width: 8, height: 8, sha256: "0".repeat(64), bytes: png.byteLength, contentType: "image/png", embeddingUri: "", seed: i });
  }
  for (const to of ["sampling", "decoding"] as const) await store.transition(record.jobId, to);
  await store.transition(record.jobId, "succeeded", { outputs });
}

/** A finished batch of 4 users with `userId` at position 1: images, shard result and embeddings, manifest, index. */
async function seedBatch(userId: string, b: number): Promise<void> {
  const batchId = newId("batch");
  const users = [`other-${b}-0`, userId, `other-${b}-2`, `other-${b}-3`];
  const lines = [];
  for (const [position, user] of users.entries()) {
    const images = [];
    for (let i = 0; i < 2; i++)
      images.push({
        uri: await blobs.put(objectKeys.batchImage(TENANT, batchId, position, i), png, "image/png"),
        sha256: "0".repeat(64),
        bytes: 600,
        width: 8,
        height: 8,
        seed: i,
      });
    lines.push(JSON.stringify({ user_id: user, position, images }));
  }
  const text = Buffer.from(lines.join("\n") + "\n");
  await index.recordBatchOutputs(
    TENANT,
    batchId,
    0,
    users.map((user_id, position) => ({ user_id, position })),
  );
  await blobs.put(objectKeys.shardEmbeddings(TENANT, batchId, 0), encodeEmbeddings(new Float32Array(8 * 16).fill(1)), "application/octet-stream");
  await blobs.put(objectKeys.shardResult(TENANT, batchId, 0), text, "application/x-ndjson");
  await blobs.put(objectKeys.batchManifest(TENANT, batchId), text, "application/x-ndjson");
}

async function seedUser(userId: string): Promise<void> {
  for (let j = 0; j < 5; j++) await seedJob(userId, `${userId}-j${j}`);
  for (let b = 0; b < 3; b++) await seedBatch(userId, b);
}

async function timeErasure(userId: string) {
  const t0 = performance.now();
  const out = await eraser.eraseUsers(TENANT, [userId], "reject");
  return { seconds: (performance.now() - t0) / 1000, counts: out.counts };
}

/** `count` objects of other users' jobs (3 per job), written in s3rver's file layout. */
async function fillBucket(count: number): Promise<number> {
  const root = join(s3.dir, s3.bucket, "tenants", TENANT, "jobs");
  const t0 = performance.now();
  const jobs = Math.ceil(count / 3);
  for (let j = 0; j < jobs; j += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, jobs - j) }, async (_, k) => {
        const dir = join(root, `job_fill${String(j + k).padStart(8, "0")}`);
        await mkdir(join(dir, "images"), { recursive: true });
        await Promise.all([
          writeFile(join(dir, "embeddings.f32._S3rver_object"), "x"),
          writeFile(join(dir, "images", "0.png._S3rver_object"), "x"),
          writeFile(join(dir, "images", "1.png._S3rver_object"), "x"),
        ]);
      }),
    );
  }
  return (performance.now() - t0) / 1000;
}

try {
  // Other users' events fill the tenant's stream (what the erasure scans).
  const events = redisKeys(PREFIX).events(TENANT);
  for (let i = 0; i < EVENTS; i += 1000) {
    const m = redis.pipeline();
    for (let k = i; k < Math.min(EVENTS, i + 1000); k++)
      m.xadd(events, "*", "type", "job.succeeded", "time", "t", "job", JSON.stringify({ jobId: `job_x${k}`, userId: `someone-${k}`, state: "succeeded" }));
    await m.exec();
  }

  await seedUser("victim-baseline");
  const base = await timeErasure("victim-baseline");
  const fillSeconds = await fillBucket(OBJECTS);
  await seedUser("victim-full");
  const full = await timeErasure("victim-full");
  const same = JSON.stringify(base.counts) === JSON.stringify(full.counts);
  console.log(`filled ${OBJECTS} objects in ${fmt(fillSeconds, 1)} s; receipts equal: ${same} ${JSON.stringify(full.counts)}`);
  report(
    "erasure-one-user",
    [
      { bucket: "user's own data only", seconds: fmt(base.seconds, 3) },
      { bucket: `+ ${OBJECTS} objects of the tenant`, seconds: fmt(full.seconds, 3) },
    ],
    { objects: OBJECTS, events: EVENTS, baseline_seconds: base.seconds, seconds: full.seconds, ratio: full.seconds / base.seconds, receipts_equal: same },
  );

  // 100,000 users in one erasure, 1,000 of them with a job each.
  const ids = Array.from({ length: ERASE_USERS }, (_, i) => `bulk-${String(i).padStart(6, "0")}`);
  for (let i = 0; i < WITH_DATA; i++) await seedJob(ids[i * Math.floor(ERASE_USERS / WITH_DATA)]!, `bulk-j${i}`);
  const keys = userDataKeys(PREFIX);
  let t0 = performance.now();
  for (let i = 0; i < ids.length; i += 1000) {
    const m = redis.pipeline();
    for (const u of ids.slice(i, i + 1000)) m.smembers(keys.userJobs(TENANT, u)).smembers(keys.userBatchOutputs(TENANT, u));
    await m.exec();
  }
  const lookupSeconds = (performance.now() - t0) / 1000;
  const erasures = createErasureStore(redis, PREFIX);
  const erasureId = newId("erasure");
  await erasures.create(erasureId, { tenant: TENANT, requestId: "bulk", userIds: ids, afterErasure: "reject", callbackUrl: "", now: new Date().toISOString() });
  const run = createErasureRunner({ erasures, eraser, chunkSize: CHUNK });
  t0 = performance.now();
  await run({ tenant: TENANT, erasureId });
  const bulkSeconds = (performance.now() - t0) / 1000;
  const receipt = (await erasures.get(erasureId))!;
  report(
    "erasure-100k-users",
    [
      { what: "bare index lookups (baseline)", seconds: fmt(lookupSeconds, 2), "users/s": fmt(ERASE_USERS / lookupSeconds, 0) },
      {
        what: `erasure (${WITH_DATA} with a job; ${CHUNK} per step; stream of ${EVENTS} events)`,
        seconds: fmt(bulkSeconds, 2),
        "users/s": fmt(ERASE_USERS / bulkSeconds, 0),
      },
    ],
    {
      users: ERASE_USERS,
      users_per_second: ERASE_USERS / bulkSeconds,
      baseline_users_per_second: ERASE_USERS / lookupSeconds,
      ratio: lookupSeconds / bulkSeconds,
      job_records: receipt.counts.jobRecords,
      images: receipt.counts.images,
      state: receipt.state,
    },
  );
} finally {
  for (const q of queues.values()) await q.close();
  redis.disconnect();
  await Promise.all([redisServer.stop(), s3.stop()]);
  await removeDir(s3.dir);
}
