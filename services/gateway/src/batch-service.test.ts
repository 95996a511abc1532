/*
 * BatchService's intake logic over fakes of its ports (fakes.ts) and a local-file blob store:
 * how users become shards, what is kept when a stream breaks, how a repeat resumes, and the order
 * in which bad requests are refused. The real Redis/BullMQ/S3 path is test/e2e/batches.test.ts
 * and test/e2e/manifest-stream.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { stageQueue, type ShardTask } from "@rebeca/contracts";
import { Sampler, UnknownUserPolicy } from "@rebeca/contracts/grpc";
import { BatchState, type BatchParameters, type CreateBatchRequest, type CreateBatchResponse } from "@rebeca/contracts/grpc-batches";
import { createLocalBlobStore } from "@rebeca/storage";
import { routeVersion } from "@rebeca/registry";
import { createBatchService } from "./batch-service.js";
import type { IntakeDeps } from "./intake.js";
import {
  callClientStream,
  callUnary,
  edgeDeps,
  intakeDeps,
  memoryBatchStore,
  metadataFor,
  recordingJobSink,
  violatedFields,
  type Outcome,
} from "./testing/fakes.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function parameters(overrides: Partial<BatchParameters> = {}): BatchParameters {
  return {
    requestId: "nightly-1",
    numImages: 2,
    sampler: Sampler.SAMPLER_DDIM,
    seed: 42,
    modelVersion: "",
    priority: 3,
    labels: {},
    callbackUrl: "",
    callbackEvents: [],
    unknownUser: UnknownUserPolicy.UNKNOWN_USER_POLICY_UNSPECIFIED,
    ...overrides,
  };
}

function setUp(intake: Partial<IntakeDeps> = {}, maxManifestBytes = 1 << 20, canary?: { version: string; weight: number }) {
  const batches = memoryBatchStore();
  const jobs = recordingJobSink();
  const dir = mkdtempSync(join(tmpdir(), "rebeca-batch-service-"));
  dirs.push(dir);
  const blobs = createLocalBlobStore(dir);
  const { deps, asked } = intakeDeps(intake);
  const service = createBatchService({
    ...edgeDeps(),
    ...deps,
    batches,
    jobs,
    blobs,
    bucket: "rebeca",
    maxManifestBytes,
    shardSize: 2,
    maxUsersPerBatch: 1000,
    ...(canary ? { batchRouting: { canaryOf: async () => canary, countRouted: () => {} } } : {}),
  });
  /** CreateBatch with the parameters, then one message per chunk. */
  const stream = (p: BatchParameters | undefined, chunks: { offset: number; userIds: string[]; last: boolean }[], tenant = "acme") => {
    const messages: CreateBatchRequest[] = [{ parameters: p }, ...chunks.map((users) => ({ users }))];
    return callClientStream(
      service.createBatch,
      (async function* () {
        yield* messages;
      })(),
      metadataFor(tenant),
    ) as Promise<Outcome<CreateBatchResponse>>;
  };
  const shardsAdded = () => jobs.added.filter((j) => j.name === "shard").map((j) => j.data as ShardTask);
  return { service, batches, jobs, blobs, asked, stream, shardsAdded };
}

const batchOf = (o: Outcome<CreateBatchResponse>) => {
  if (!o.ok) throw new Error(`${status[o.err.code]}: ${o.err.details}`);
  return o.res.batch!;
};

describe("CreateBatch", () => {
  it("cuts the users into shards of the shard size, enqueues each in the tenant's batch prior queue, and seals the batch", async () => {
    const { stream, batches, jobs, shardsAdded } = setUp();
    const batch = batchOf(
      await stream(parameters(), [
        { offset: 0, userIds: ["u0", "u1", "u2"], last: false },
        { offset: 3, userIds: ["u3", "u4"], last: true },
      ]),
    );
    expect(batch.state).toBe(BatchState.BATCH_STATE_RUNNING);
    expect(shardsAdded().map((s) => [s.shard, s.firstPosition, s.userIds])).toEqual([
      [0, 0, ["u0", "u1"]],
      [1, 2, ["u2", "u3"]],
      [2, 4, ["u4"]],
    ]);
    expect(jobs.added.every((j) => j.queue === stageQueue("prior", "acme", "batch"))).toBe(true);
    expect(jobs.added.map((j) => j.opts.jobId)).toEqual([`${batch.batchId}-s0`, `${batch.batchId}-s1`, `${batch.batchId}-s2`]);
    expect(shardsAdded()[0]!.spec).toMatchObject({ numImages: 2, seed: 42, sampler: "ddim", priority: 3, shardSize: 2 });
    const stored = batches.records.get(batch.batchId)!;
    expect(stored.counts).toMatchObject({ total: 5, received: 5, shardsTotal: 3 });
    expect([...batches.shards.get(batch.batchId)!]).toEqual([0, 1, 2]);
    // Nothing is finished yet, so nobody asks for the finalize step.
    expect(jobs.added.some((j) => j.name === "finalize")).toBe(false);
  });

  it("under a canary gives each user the version a single job of theirs gets, in shards 2b and 2b+1; an empty one is done at once", async () => {
    const { stream, batches, shardsAdded } = setUp({}, 1 << 20, { version: "demo-v2", weight: 50 });
    const users = Array.from({ length: 40 }, (_, i) => `u${i}`);
    const batch = batchOf(await stream(parameters(), [{ offset: 0, userIds: users, last: true }]));
    const stored = batches.records.get(batch.batchId)!;
    expect(stored.spec.canary).toEqual({ version: "demo-v2", weight: 50 });
    expect(stored.counts).toMatchObject({ total: 40, shardsTotal: 40 });
    const policy = { stable: "demo-v1", candidate: "demo-v2", candidateWeight: 50 };
    const seen = new Map<number, string>();
    for (const task of shardsAdded()) {
      const block = Math.floor(task.shard / 2);
      expect(task.spec.modelVersion).toBe(task.shard % 2 === 0 ? "demo-v1" : "demo-v2");
      task.userIds.forEach((u, j) => {
        expect(routeVersion(policy, "acme", u, () => true).version).toBe(task.spec.modelVersion);
        expect(Math.floor(task.positions![j]! / 2)).toBe(block);
        seen.set(task.positions![j]!, u);
      });
    }
    // Every user exactly once, at their position; the versions no user of a block got are done already.
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(users.map((_, i) => i));
    expect([...seen.entries()].every(([p, u]) => users[p] === u)).toBe(true);
    expect(batches.doneShards).toBe(40 - shardsAdded().length);
    expect(batches.doneShards).toBeGreaterThan(0);
  });

  it("a batch that names model_version is not split by the canary", async () => {
    const { stream, batches, shardsAdded } = setUp({}, 1 << 20, { version: "demo-v2", weight: 50 });
    const batch = batchOf(await stream(parameters({ modelVersion: "demo-v1" }), [{ offset: 0, userIds: ["a", "b", "c"], last: true }]));
    expect(batches.records.get(batch.batchId)!.spec.canary).toBeUndefined();
    expect(shardsAdded().map((t) => [t.shard, t.spec.modelVersion, t.positions])).toEqual([
      [0, "demo-v1", undefined],
      [1, "demo-v1", undefined],
    ]);
  });

  it("enqueues the finalize step when every shard already finished by the time the batch is sealed", async () => {
    const { stream, batches, jobs } = setUp();
    batches.doneShards = 1;
    const batch = batchOf(await stream(parameters(), [{ offset: 0, userIds: ["u0", "u1"], last: true }]));
    const finalize = jobs.added.filter((j) => j.name === "finalize");
    expect(finalize).toHaveLength(1);
    expect(finalize[0]).toMatchObject({
      queue: stageQueue("decode", "acme", "batch"),
      data: { tenant: "acme", batchId: batch.batchId },
      opts: { jobId: `${batch.batchId}-final` },
    });
  });

  it("keeps the complete shards of a stream that breaks on a bad id, and resumes under the same request id", async () => {
    const { stream, batches, shardsAdded } = setUp();
    const broken = await stream(parameters(), [
      { offset: 0, userIds: ["u0", "u1", "u2"], last: false },
      { offset: 3, userIds: ["u3", "bad id"], last: false },
    ]);
    expect(violatedFields(broken)).toEqual(["users.user_ids[1]"]);
    expect(broken.ok || broken.err.details).toContain("user at position 4");
    const [record] = [...batches.records.values()];
    // Shard 0 (u0, u1) was stored; u2 waits for a partner that never came.
    expect(record!.state).toBe("receiving");
    expect(record!.counts.received).toBe(2);
    expect(shardsAdded().map((s) => s.userIds)).toEqual([["u0", "u1"]]);

    const resumed = batchOf(await stream(parameters(), [{ offset: 2, userIds: ["u2", "u3", "u4"], last: true }]));
    expect(resumed.batchId).toBe(record!.batchId);
    expect(shardsAdded().map((s) => s.userIds)).toEqual([["u0", "u1"], ["u2", "u3"], ["u4"]]);
    expect(batches.records.get(resumed.batchId)!.counts.total).toBe(5);
  });

  it("says how many users are stored when a stream ends without its last chunk", async () => {
    const { stream, batches } = setUp();
    const out = await stream(parameters(), [{ offset: 0, userIds: ["u0", "u1", "u2", "u3"], last: false }]);
    expect(out.ok || out.err.code).toBe(status.FAILED_PRECONDITION);
    expect(out.ok || out.err.details).toContain("4 users are stored");
    expect([...batches.records.values()][0]!.state).toBe("receiving");
  });

  it("answers a repeat of a sealed batch with it and enqueues nothing more", async () => {
    const { stream, jobs } = setUp();
    const first = batchOf(await stream(parameters(), [{ offset: 0, userIds: ["u0", "u1", "u2"], last: true }]));
    const added = jobs.added.length;
    const again = batchOf(await stream(parameters(), []));
    expect(again.batchId).toBe(first.batchId);
    expect(jobs.added).toHaveLength(added);
  });

  it("creates nothing for a stream that goes bad before its first user", async () => {
    const { stream, batches } = setUp();
    expect(violatedFields(await stream(parameters(), [{ offset: 0, userIds: [""], last: true }]))).toEqual(["users.user_ids[0]"]);
    expect(violatedFields(await stream(undefined, []))).toEqual(["parameters"]);
    expect(batches.records.size).toBe(0);
  });

  it("refuses in order: fields, then the model, then the callback URL, then admission", async () => {
    const refusingGuard = { callbackGuard: async () => "loopback address" };
    const fields = setUp(refusingGuard);
    expect(
      violatedFields(
        await fields.stream(parameters({ numImages: 0, modelVersion: "nope", callbackUrl: "http://127.0.0.1/" }), [{ offset: 0, userIds: ["u0"], last: true }]),
      ),
    ).toEqual(["parameters.num_images"]);

    const model = await setUp(refusingGuard).stream(parameters({ modelVersion: "nope", callbackUrl: "http://127.0.0.1/" }), [
      { offset: 0, userIds: ["u0"], last: true },
    ]);
    expect(model.ok || model.err.code).toBe(status.FAILED_PRECONDITION);

    const guard = setUp(refusingGuard);
    expect(violatedFields(await guard.stream(parameters({ callbackUrl: "http://127.0.0.1/" }), [{ offset: 0, userIds: ["u0"], last: true }]))).toEqual([
      "parameters.callback_url",
    ]);
    expect(guard.asked.admissions).toEqual([]);

    const busy = setUp({ admission: async () => ({ reason: "backlog", retryAfterSeconds: 10 }) });
    const refused = await busy.stream(parameters(), [{ offset: 0, userIds: ["u0"], last: true }]);
    expect(refused.ok || refused.err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(busy.batches.records.size).toBe(0);
    expect(busy.jobs.added).toHaveLength(0);
  });
});

describe("CreateBatchFromManifest", () => {
  const manifestRequest = (manifestUri: string, p = parameters()) => ({ parameters: p, manifestUri });

  it("reads the tenant's manifest, one user id per line, into shards", async () => {
    const { service, blobs, shardsAdded } = setUp();
    await blobs.put("tenants/acme/nightly.txt", new TextEncoder().encode("u0\nu1\r\n\nu2\n"), "text/plain");
    const out = await callUnary(service.createBatchFromManifest, manifestRequest("s3://rebeca/tenants/acme/nightly.txt"), metadataFor("acme"));
    if (!out.ok) throw new Error(out.err.details);
    expect(out.res.batch!.state).toBe(BatchState.BATCH_STATE_RUNNING);
    expect(shardsAdded().map((s) => s.userIds)).toEqual([["u0", "u1"], ["u2"]]);
  });

  it("refuses a URI outside the tenant's prefix, another bucket, and a key that climbs out", async () => {
    const { service } = setUp();
    for (const uri of [
      "s3://rebeca/tenants/globex/x.txt",
      "s3://other/tenants/acme/x.txt",
      "s3://rebeca/tenants/acme/../globex/x.txt",
      "https://example.com/x",
    ]) {
      expect(violatedFields(await callUnary(service.createBatchFromManifest, manifestRequest(uri), metadataFor("acme")))).toEqual(["manifest_uri"]);
    }
  });

  it("answers NOT_FOUND for a missing manifest and INVALID_ARGUMENT for one over the size limit", async () => {
    const { service, blobs } = setUp({}, 8);
    const missing = await callUnary(service.createBatchFromManifest, manifestRequest("s3://rebeca/tenants/acme/none.txt"), metadataFor("acme"));
    expect(missing.ok || missing.err.code).toBe(status.NOT_FOUND);
    await blobs.put("tenants/acme/big.txt", new TextEncoder().encode("u0\nu1\nu2\n"), "text/plain");
    const big = await callUnary(service.createBatchFromManifest, manifestRequest("s3://rebeca/tenants/acme/big.txt"), metadataFor("acme"));
    expect(violatedFields(big)).toEqual(["manifest_uri"]);
    expect(big.ok || big.err.details).toContain("the limit is 8 bytes");
  });
});

describe("GetBatch, ListBatches, CancelBatch", () => {
  it("hides other tenants' batches, lists paging problems at once, and cancels", async () => {
    const { service, stream, batches } = setUp();
    const batch = batchOf(await stream(parameters(), [{ offset: 0, userIds: ["u0"], last: true }]));
    const theirs = await callUnary(service.getBatch, { batchId: batch.batchId }, metadataFor("globex"));
    expect(theirs.ok || theirs.err.code).toBe(status.NOT_FOUND);
    expect(violatedFields(await callUnary(service.getBatch, { batchId: "job_00000000000000000000000000" }, metadataFor("acme")))).toEqual(["batch_id"]);
    expect(violatedFields(await callUnary(service.listBatches, { pageSize: -1, pageToken: "nope" }, metadataFor("acme")))).toEqual(["page_size", "page_token"]);
    const listed = await callUnary(service.listBatches, { pageSize: 0, pageToken: "" }, metadataFor("acme"));
    expect(listed.ok && listed.res.batches.map((b) => b.batchId)).toEqual([batch.batchId]);
    const cancelled = await callUnary(service.cancelBatch, { batchId: batch.batchId }, metadataFor("acme"));
    expect(cancelled.ok && cancelled.res.batch!.state).toBe(BatchState.BATCH_STATE_CANCELLED);
    expect(batches.records.get(batch.batchId)!.state).toBe("cancelled");
  });
});
