import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { promisify } from "node:util";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chunksOf,
  createBatchClient,
  createJobClient,
  createModelClient,
  REPO_ROOT,
  startStack,
  type JobClient,
  type ModelClient,
  type Stack,
} from "@rebeca/devstack";
import { JobState, UnknownUserPolicy } from "@rebeca/contracts/grpc";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { createS3BlobStore, createS3Client, type BlobStore } from "@rebeca/storage";
import { listModelEvents, publishDerivedVersion, publishVersionDir, registryRedisKeys, type RegistryDeps } from "@rebeca/registry";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

/** Gets a service's metrics text from its ops port. */
const metricsOf = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

describe("model rollout: registry versions served without restart, refused when corrupt, routed by a per-user canary", () => {
  let stack: Stack;
  let jobs: JobClient;
  let models: ModelClient;
  let redis: Redis;
  let registry: RegistryDeps;
  const caches: string[] = [];
  const users = modelUserIds();

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) caches.push(await mkdtemp(join(tmpdir(), "rebeca-model-cache-")));
    // Each service its own cache: each one fetches and verifies for itself.
    const registryEnv = (dir: string) => ({ MODEL_CACHE_DIR: dir, REGISTRY_POLL_MS: "1000" });
    stack = await startStack({
      services: ["gateway", "prior-worker", "decoder-worker"],
      env: { gateway: registryEnv(caches[0]!), "prior-worker": registryEnv(caches[1]!), "decoder-worker": registryEnv(caches[2]!) },
    });
    jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    models = createModelClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    redis = new Redis(stack.redis.url);
    const blobs = createS3BlobStore(
      createS3Client({ bucket: stack.s3.bucket, endpoint: stack.s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }),
      stack.s3.bucket,
    );
    registry = { blobs, redis, objectPrefix: "registry", redisPrefix: stack.prefix };
  });
  afterAll(async () => {
    jobs?.close();
    models?.close();
    redis?.disconnect();
    await stack?.stop();
    for (const dir of caches) await rm(dir, { recursive: true, force: true });
  });

  it("a version published while a batch runs is served within seconds; the batch finishes with nothing lost, every job on the version it was accepted with", async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    try {
      const batchUsers = users.slice(0, 48);
      const batch = await batches.createBatch({ requestId: "rollout-batch", numImages: 1, modelVersion: "demo-v1" }, chunksOf(batchUsers, 16));
      // The same model under a new name, published from the registry copy of demo-v1.
      await publishVersionDir(registry, `${REPO_ROOT}models/demo-v1`, { actor: "test" });
      const t0 = Date.now();
      await publishDerivedVersion(registry, "demo-v1", "demo-v1-r2", new Map(), { actor: "test", reason: "rollout test" });
      await expect.poll(async () => (await models.listModels()).versions.map((v) => v.version), { timeout: 15_000, interval: 100 }).toContain("demo-v1-r2");
      const visibleAfterMs = Date.now() - t0;
      const { job } = await jobs.createJob({ requestId: "on-r2", userId: users[0]!, modelVersion: "demo-v1-r2", numImages: 2 });
      const done = await untilJobDone(jobs, job!.jobId, 60_000);
      expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect(done.modelVersion).toBe("demo-v1-r2");
      expect(done.outputs).toHaveLength(2);
      expect(visibleAfterMs).toBeLessThan(10_000);
      // The gateway pinned the versions of stored work against cache pruning (the batch's and the job's).
      await expect.poll(async () => Object.keys(await redis.hgetall(registryRedisKeys(stack.prefix).accepted())).sort()).toEqual(["demo-v1", "demo-v1-r2"]);

      const finished = await untilBatchCompleted(batches, batch.batchId, 120_000);
      expect(finished.state).toBe(BatchState.BATCH_STATE_COMPLETED);
      expect(finished.counts).toMatchObject({ total: batchUsers.length, succeeded: batchUsers.length, failed: 0, cancelled: 0 });
      expect(finished.parameters?.modelVersion).toBe("demo-v1");
      expect(finished.canaryVersion).toBe(""); // it named its version: no canary applies
      // Nobody restarted: the processes that started the test served the new version.
      for (const name of ["gateway", "prior-worker", "decoder-worker"] as const) expect(stack.services[name]!.process.child.exitCode).toBeNull();
    } finally {
      batches.close();
    }
  });

  it("a version whose file does not match its index is refused by every service, with model.refused and a metric, while the others keep serving", async () => {
    // The index records the true bytes; the bucket ends up holding others (a torn or tampered upload).
    const tampering: BlobStore = {
      ...registry.blobs,
      put: (key, body, type) => registry.blobs.put(key, key.endsWith("demo-v1-bad/prior.onnx") ? body.map((b) => b ^ 0xff) : body, type),
    };
    await publishDerivedVersion({ ...registry, blobs: tampering }, "demo-v1", "demo-v1-bad", new Map(), { actor: "test", reason: "tampered" });
    await expect
      .poll(async () => (await models.listModels()).versions.find((v) => v.version === "demo-v1-bad")?.refusedReason ?? "", { timeout: 15_000, interval: 100 })
      .toMatch(/prior\.onnx has sha256/);
    await expect(jobs.createJob({ requestId: "on-bad", userId: users[0]!, modelVersion: "demo-v1-bad" })).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
    });
    await expect(models.setCanary("demo-v1-bad", 10)).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    for (const name of ["gateway", "prior-worker", "decoder-worker"] as const)
      await expect
        .poll(async () => metricsOf(stack.services[name]!.httpPort), { timeout: 15_000 })
        .toMatch(/rebeca_model_refused_total\{[^}]*version="demo-v1-bad"[^}]*\} 1/);
    const refusedBy = (await listModelEvents(redis, stack.prefix, 100))
      .filter((e) => e.type === "model.refused" && e.version === "demo-v1-bad")
      .map((e) => e.actor);
    expect(new Set(refusedBy)).toEqual(new Set(["gateway", "prior-worker", "decoder-worker"]));
    // Serving continues on the good versions.
    const { job } = await jobs.createJob({ requestId: "still-serving", userId: users[1]!, modelVersion: "demo-v1-r2" });
    expect((await untilJobDone(jobs, job!.jobId, 60_000)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
  });

  it("a 10% canary sends 10% ± 3% of users to the candidate, each user to the same version every time; rollback sends everyone back", async () => {
    const policy = (await models.setCanary("demo-v1-r2", 10, "canary test")).policy!;
    expect(policy).toMatchObject({ stable: "demo-v1", candidate: "demo-v1-r2", candidateWeight: 10 });
    // Unknown users under "reject" fail at the prior stage at once: cheap jobs that still record their version.
    const ids = Array.from({ length: 1000 }, (_, i) => `canary-user-${i}`);
    const create = (userId: string, requestId: string) =>
      jobs.createJob({ requestId, userId, unknownUser: UnknownUserPolicy.UNKNOWN_USER_POLICY_REJECT }).then((r) => r.job!.modelVersion);
    const first: string[] = [];
    for (const chunk of chunksOf(ids, 50)) first.push(...(await Promise.all(chunk.userIds.map((u) => create(u, `c1-${u}`)))));
    const share = first.filter((v) => v === "demo-v1-r2").length / ids.length;
    expect(share).toBeGreaterThanOrEqual(0.07);
    expect(share).toBeLessThanOrEqual(0.13);
    const again = await Promise.all(ids.slice(0, 200).map((u) => create(u, `c2-${u}`)));
    expect(again).toEqual(first.slice(0, 200));
    const routed = await metricsOf(stack.services.gateway!.httpPort);
    expect(routed).toMatch(/rebeca_gateway_model_routed_total\{[^}]*version="demo-v1-r2"[^}]*arm="candidate"[^}]*\} [1-9]/);

    // A batch without a model_version under the same canary: each user on the version their single
    // job got, grouped into per-version shards; it keeps those versions after the rollback below.
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const known = users.slice(100, 160);
    const batchUsers = [...ids, ...known];
    const singleOf = new Map(ids.map((u, i) => [u, first[i]!]));
    for (const u of known) singleOf.set(u, await create(u, `c4-${u}`));
    let batchId = "";
    try {
      const batch = await batches.createBatch(
        { requestId: "canary-batch", numImages: 1, unknownUser: UnknownUserPolicy.UNKNOWN_USER_POLICY_REJECT },
        chunksOf(batchUsers, 250),
      );
      batchId = batch.batchId;
    } finally {
      batches.close();
    }

    const rolled = await models.rollback("test over");
    expect(rolled).toMatchObject({ changed: true, policy: { candidateWeight: 0 } });
    const after = await Promise.all(ids.slice(0, 200).map((u) => create(u, `c3-${u}`)));
    expect(new Set(after)).toEqual(new Set(["demo-v1"]));
    const types = (await models.listModelEvents(10)).events.filter((e) => e.tenant === "acme").map((e) => e.type);
    expect(types.slice(0, 2)).toEqual(["model.rolled_back", "model.canary"]);

    const reader = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    try {
      const finished = await untilBatchCompleted(reader, batchId, 180_000);
      expect(finished.state).toBe(BatchState.BATCH_STATE_COMPLETED);
      expect(finished).toMatchObject({ canaryVersion: "demo-v1-r2", canaryWeight: 10, parameters: { modelVersion: "demo-v1" } });
      // Lost 0: every user accounted for (the unknown ones refused at the prior, the known ones served).
      expect(finished.counts).toMatchObject({ total: batchUsers.length, succeeded: known.length, failed: ids.length, cancelled: 0, expired: 0 });
      const key = finished.resultManifestUri.replace(`s3://${stack.s3.bucket}/`, "");
      const lines = new TextDecoder()
        .decode(await registry.blobs.get(key))
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { user_id: string; position: number; model_version: string; images?: unknown[] });
      expect(lines.map((l) => l.position)).toEqual(batchUsers.map((_, i) => i));
      expect(lines.map((l) => l.user_id)).toEqual(batchUsers);
      // The same version as the user's single job, recorded per user, after the policy was rolled back.
      expect(lines.map((l) => l.model_version)).toEqual(batchUsers.map((u) => singleOf.get(u)));
      const onCandidate = lines.filter((l) => l.model_version === "demo-v1-r2").length / lines.length;
      expect(onCandidate).toBeGreaterThanOrEqual(0.07);
      expect(onCandidate).toBeLessThanOrEqual(0.13);
      expect(lines.filter((l) => l.images?.length === 1).map((l) => l.user_id)).toEqual(known);
    } finally {
      reader.close();
    }
  });

  it("the CLI publishes a directory and drives the policy: canary, status, promote", async () => {
    const env = {
      ...process.env,
      REBECA_ADDRESS: stack.grpcAddress,
      REBECA_API_KEY: stack.tenants.acme!.apiKey,
      S3_BUCKET: stack.s3.bucket,
      S3_ENDPOINT: stack.s3.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      REDIS_URL: stack.redis.url,
      QUEUE_PREFIX: stack.prefix,
    };
    const cli = async (...args: string[]) =>
      (await promisify(execFile)(process.execPath, [`${REPO_ROOT}packages/cli/dist/main.js`, "models", ...args], { env, timeout: 60_000 })).stdout;
    expect(JSON.parse(await cli("publish", `${REPO_ROOT}models/demo-v2`))).toMatchObject({ version: "demo-v2", files: expect.any(Number), created: true });
    expect(JSON.parse(await cli("canary", "demo-v1-r2", "--weight", "25", "--reason", "from the cli"))).toMatchObject({
      candidate: "demo-v1-r2",
      candidateWeight: 25,
    });
    const status = await cli("status");
    expect(status).toContain('"candidateWeight":25');
    expect(status).toMatch(/model\.canary\tdemo-v1-r2\tacme\tfrom the cli/);
    expect(JSON.parse(await cli("promote"))).toMatchObject({ stable: "demo-v1-r2", candidate: "", candidateWeight: 0 });
    const { job } = await jobs.createJob({ requestId: "after-promote", userId: users[2]! });
    expect(job!.modelVersion).toBe("demo-v1-r2");
    expect(await cli("list")).toMatch(/demo-v1-bad\tregistry\t\S+\tREFUSED: /);
  });
});
