import { randomBytes } from "node:crypto";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { status } from "@grpc/grpc-js";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBatchClient, createJobClient, startStack, type BatchClient, type JobClient, type Stack } from "@rebeca/devstack";
import { stageQueue, WORK_CLASSES } from "@rebeca/contracts";
import { JobState } from "@rebeca/contracts/grpc";
import { collect } from "../support/events.js";
import { fieldViolations, grpcError } from "../support/grpc-errors.js";
import { untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_USERS_PER_BATCH = 40;
const MAX_IMAGES_PER_JOB = 4;
// Above the isolation test's peak (2 open, 2 closing) so only the cap test reaches it.
const MAX_WATCHERS = 8;

/*
 * Access control on the whole running pipeline: every RPC needs a key, tenants see only their own
 * jobs, batches, events, results and objects, request limits hold, and the notifier's admin routes
 * need their token.
 */
describe("access: authentication, tenant isolation, limits, admin routes", () => {
  const ADMIN_TOKEN = randomBytes(24).toString("hex");
  let stack: Stack;
  let acme: JobClient;
  let globex: JobClient;
  let acmeBatches: BatchClient;
  let globexBatches: BatchClient;
  let redis: Redis;
  let s3: S3Client;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({
      env: {
        gateway: {
          MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
          MAX_USERS_PER_BATCH: String(MAX_USERS_PER_BATCH),
          MAX_IMAGES_PER_JOB: String(MAX_IMAGES_PER_JOB),
          MAX_WATCHERS_PER_TENANT: String(MAX_WATCHERS),
          SHARD_SIZE: "8",
        },
        notifier: { ADMIN_TOKEN },
      },
    });
    acme = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    globex = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    acmeBatches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    globexBatches = createBatchClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    redis = new Redis(stack.redis.url);
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
    for (const c of [acme, globex, acmeBatches, globexBatches]) c?.close();
    s3?.destroy();
    redis?.disconnect();
    await stack?.stop();
  });

  const recordKeys = async () => (await redis.keys(`${stack.prefix}:*`)).filter((k) => /:(job|batch|req|breq):/.test(k)).sort();

  it("refuses every RPC of JobService and BatchService without a valid key, writing nothing", async () => {
    const before = await recordKeys();
    const missingJob = "job_01m89ydm9ytgbzrn9q8n0yrm08";
    const missingBatch = "batch_01m89ydm9ytgbzrn9q8n0yrm08";
    for (const key of [null, "", "rk_wrong", `${stack.tenants.acme!.apiKey}x`, stack.tenants.acme!.apiKey.slice(0, -1), "x".repeat(4096)]) {
      const jobs = createJobClient(stack.grpcAddress, key);
      const batches = createBatchClient(stack.grpcAddress, key);
      const calls: [string, () => Promise<unknown>][] = [
        ["CreateJob", () => jobs.createJob({ requestId: "auth", userId: users[0]! })],
        ["GetJob", () => jobs.getJob(missingJob)],
        ["ListJobs", () => jobs.listJobs({})],
        ["CancelJob", () => jobs.cancelJob(missingJob)],
        ["CreateBatch", () => batches.createBatch({ requestId: "auth" }, [{ offset: 0, userIds: [users[0]!], last: true }])],
        ["CreateBatchFromManifest", () => batches.createBatchFromManifest({ requestId: "auth" }, `s3://${stack.s3.bucket}/tenants/acme/in.txt`)],
        ["GetBatch", () => batches.getBatch(missingBatch)],
        ["ListBatches", () => batches.listBatches()],
        ["CancelBatch", () => batches.cancelBatch(missingBatch)],
      ];
      for (const [name, call] of calls) expect([name, (await grpcError(call)).code]).toEqual([name, status.UNAUTHENTICATED]);
      const watch = collect(jobs.watchEvents({ afterEventId: "0" }));
      await expect(watch.until(() => false, 10_000)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      jobs.close();
      batches.close();
    }
    expect(await recordKeys()).toEqual(before);
  });

  it("keeps a tenant's jobs, batches, events, results and objects from another tenant", async () => {
    const { job } = await acme.createJob({ requestId: "iso-job", userId: users[0]!, numImages: 2, labels: { team: "iso" } });
    const done = await untilJobDone(acme, job!.jobId);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const batch = await acmeBatches.createBatch({ requestId: "iso-batch", labels: { team: "iso" } }, [{ offset: 0, userIds: users.slice(0, 3), last: true }]);

    // Read, cancel, list.
    expect((await grpcError(() => globex.getJob(job!.jobId))).code).toBe(status.NOT_FOUND);
    expect((await grpcError(() => globex.cancelJob(job!.jobId))).code).toBe(status.NOT_FOUND);
    expect((await grpcError(() => globexBatches.getBatch(batch.batchId))).code).toBe(status.NOT_FOUND);
    expect((await grpcError(() => globexBatches.cancelBatch(batch.batchId))).code).toBe(status.NOT_FOUND);
    expect((await globex.listJobs({ pageSize: 100, labels: { team: "iso" } })).jobs).toEqual([]);
    expect((await globexBatches.listBatches(100)).batches.map((b) => b.batchId)).not.toContain(batch.batchId);
    expect((await acme.getJob(job!.jobId)).job!.state).toBe(JobState.JOB_STATE_SUCCEEDED);

    // Watch: filtering globex's stream by acme's ids yields nothing; a globex marker proves the stream is live.
    const marker = (await globex.createJob({ requestId: "iso-marker", userId: users[1]! })).job!;
    for (const filter of [{ jobId: job!.jobId }, { batchId: batch.batchId }, {}]) {
      const watch = collect(globex.watchEvents({ afterEventId: "0", ...filter }));
      const probe = collect(globex.watchEvents({ afterEventId: "0", jobId: marker.jobId }));
      await probe.until((es) => es.some((e) => e.jobId === marker.jobId));
      probe.close();
      // The unfiltered watch has replayed at least up to the marker; the filtered ones had the same history to scan.
      if (Object.keys(filter).length === 0) await watch.until((es) => es.some((e) => e.jobId === marker.jobId));
      watch.close();
      expect(watch.events.filter((e) => e.jobId === job!.jobId || e.batchId === batch.batchId)).toEqual([]);
    }

    // Results: every output object is under acme's prefix, and globex cannot make the gateway read acme's objects.
    const uris = done.outputs.flatMap((o) => [o.uri, o.embeddingUri]);
    expect(uris.length).toBe(4);
    for (const uri of uris) expect(uri.startsWith(`s3://${stack.s3.bucket}/tenants/acme/jobs/${job!.jobId}/`)).toBe(true);
    const keysUnder = async (prefix: string) =>
      ((await s3.send(new ListObjectsV2Command({ Bucket: stack.s3.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);
    expect((await keysUnder("tenants/acme/")).filter((k) => k.includes(job!.jobId))).toHaveLength(3);
    expect((await keysUnder("tenants/globex/")).filter((k) => k.includes(job!.jobId) || k.includes(batch.batchId))).toEqual([]);
    await s3.send(new PutObjectCommand({ Bucket: stack.s3.bucket, Key: "tenants/acme/inputs/ids.txt", Body: users.slice(0, 2).join("\n") }));
    for (const uri of [
      `s3://${stack.s3.bucket}/tenants/acme/inputs/ids.txt`,
      `s3://${stack.s3.bucket}/tenants/globex/../acme/inputs/ids.txt`,
      `s3://${stack.s3.bucket}/tenants/globex/./../acme/inputs/ids.txt`,
      `s3://${stack.s3.bucket}/tenants/globex//../acme/inputs/ids.txt`,
      uris[0]!,
    ]) {
      const err = await grpcError(() => globexBatches.createBatchFromManifest({ requestId: `steal-${randomBytes(3).toString("hex")}` }, uri));
      expect([uri, err.code]).toEqual([uri, status.INVALID_ARGUMENT]);
      expect(fieldViolations(err).map((v) => v.field)).toEqual(["manifest_uri"]);
    }
    // Queues are per tenant: acme's batch shards sit in acme's queues only (either work class).
    const shardsIn = async (tenant: string) => {
      const found = [];
      for (const workClass of WORK_CLASSES) {
        const q = new Queue(stageQueue("prior", tenant, workClass), { connection: redis, prefix: stack.prefix });
        found.push(
          ...(await q.getJobs(["wait", "prioritized", "active", "delayed", "completed"])).filter(
            (j) => j?.name === "shard" && j.data.batchId === batch.batchId,
          ),
        );
        await q.close();
      }
      return found;
    };
    expect((await shardsIn("acme")).length).toBeGreaterThan(0);
    expect(await shardsIn("globex")).toEqual([]);
  });

  it("enforces the message size, users per batch and images per job limits, writing nothing", async () => {
    const before = await recordKeys();
    const big = await grpcError(() => acme.createJob({ requestId: "big", userId: users[0]!, labels: { k: "v".repeat(MAX_MESSAGE_BYTES) } }));
    expect(big.code).toBe(status.RESOURCE_EXHAUSTED);
    const images = await grpcError(() => acme.createJob({ requestId: "images", userId: users[0]!, numImages: MAX_IMAGES_PER_JOB + 1 }));
    expect(images.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(images).map((v) => v.field)).toEqual(["num_images"]);
    expect(await recordKeys()).toEqual(before);

    const tooMany = Array.from({ length: MAX_USERS_PER_BATCH + 1 }, (_, i) => users[i % users.length]!);
    const err = await grpcError(() => acmeBatches.createBatch({ requestId: "too-many" }, [{ offset: 0, userIds: tooMany, last: true }]));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(err)[0]!.description).toContain(`at most ${MAX_USERS_PER_BATCH} users`);
    const atLimit = await acmeBatches.createBatch({ requestId: "at-limit" }, [{ offset: 0, userIds: tooMany.slice(0, MAX_USERS_PER_BATCH), last: true }]);
    expect(atLimit.counts!.total).toBe(MAX_USERS_PER_BATCH);
  });

  it("caps a tenant's open WatchEvents streams, and frees a slot when one closes", async () => {
    // Only acme watches here (globex's watches in other tests are closed or refused before counting).
    let n = 0;
    /** Opens a watch and resolves once it has seen a fresh job's event (so the gateway counts it), or with its error. */
    async function openWatch(client: JobClient) {
      const watch = collect(client.watchEvents({ types: ["job.queued"] }));
      for (;;) {
        const { job } = await client.createJob({ requestId: `w-${n++}`, userId: users[0]! });
        const seen = await watch
          .until((es) => es.some((e) => e.jobId === job!.jobId), 2000)
          .then(
            () => true,
            (err: { code?: number }) => (err.code === undefined ? false : err),
          );
        if (seen === true) return { watch, error: null };
        if (seen !== false) return { watch, error: seen as { code?: number } };
      }
    }
    const open = [];
    for (let i = 0; i < MAX_WATCHERS; i++) {
      const w = await openWatch(acme);
      expect(w.error).toBeNull();
      open.push(w.watch);
    }
    const refused = await openWatch(acme);
    expect(refused.error).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    // Another tenant is not affected.
    const other = await openWatch(globex);
    expect(other.error).toBeNull();
    other.watch.close();
    // Closing one frees its slot (the cancel reaches the gateway asynchronously: retry until then).
    open.pop()!.close();
    const deadline = Date.now() + 10_000;
    let again = await openWatch(acme);
    while (again.error && Date.now() < deadline) again = await openWatch(acme);
    expect(again.error).toBeNull();
    again.watch.close();
    for (const w of open) w.close();
  });

  it("a batch stream that ends before any user creates nothing; a repeat of a started batch is answered with it", async () => {
    const before = await recordKeys();
    const empty = await grpcError(() => acmeBatches.createBatch({ requestId: "no-users" }, [{ offset: 0, userIds: [], last: false }]));
    expect(empty.code).toBe(status.FAILED_PRECONDITION);
    expect((await grpcError(() => acmeBatches.createBatch({ requestId: "no-users" }, []))).code).toBe(status.FAILED_PRECONDITION);
    expect(await recordKeys()).toEqual(before);
    const started = await acmeBatches.createBatch({ requestId: "started" }, [{ offset: 0, userIds: users.slice(0, 2), last: true }]);
    const repeat = await acmeBatches.createBatch({ requestId: "started" }, []);
    expect(repeat.batchId).toBe(started.batchId);
  });

  it("guards every notifier admin route with its token", async () => {
    const base = `http://127.0.0.1:${stack.services.notifier!.httpPort}`;
    const routes: [string, string][] = [
      ["GET", "/admin/dead-letters"],
      ["POST", "/admin/dead-letters/msg_acme_1-0/replay"],
      ["GET", "/admin/deliveries/msg_acme_1-0"],
      ["DELETE", "/admin/dead-letters"],
      ["PUT", "/admin/anything"],
    ];
    const wrong = [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
      `Bearer ${ADMIN_TOKEN}x`,
      `bearer ${ADMIN_TOKEN}`,
      `Basic ${ADMIN_TOKEN}`,
      `Bearer ${"a".repeat(5000)}`,
    ];
    for (const [method, path] of routes) {
      for (const authorization of wrong) {
        const res = await fetch(`${base}${path}`, { method, headers: authorization === undefined ? {} : { authorization } });
        expect([method, path, authorization, res.status]).toEqual([method, path, authorization, 401]);
      }
    }
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    expect((await fetch(`${base}/admin/dead-letters`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${base}/admin/dead-letters/%E0%A4%A/replay`, { method: "POST", headers: auth })).status).toBe(400);
    expect((await fetch(`${base}/admin/dead-letters/nope/replay`, { method: "POST", headers: auth })).status).toBe(404);
    // The gateway's ops port has no state-changing routes at all.
    const gateway = `http://127.0.0.1:${stack.services.gateway!.httpPort}`;
    for (const method of ["POST", "PUT", "DELETE"]) expect((await fetch(`${gateway}/admin/dead-letters`, { method })).status).toBe(404);
  });
});
