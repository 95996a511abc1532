import { status, credentials, Metadata } from "@grpc/grpc-js";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobClient, REPO_ROOT, startStack, type JobClient, type Stack } from "@rebeca/devstack";
import { JobState, Sampler, TimestepSpacing, type CreateJobRequest } from "@rebeca/contracts/grpc";
import { fieldViolations, grpcError } from "../support/grpc-errors.js";
import { collect } from "../support/events.js";
import { modelUserIds } from "../support/world.js";
import { loadSync } from "@grpc/proto-loader";
import { loadPackageDefinition } from "@grpc/grpc-js";

/*
 * The API contract on a gateway with no workers running, so every accepted job stays in the
 * queue where the test can count it: validation, auth, idempotency, tenant isolation, cancel.
 */
describe("gateway API", () => {
  let stack: Stack;
  let acme: JobClient;
  let globex: JobClient;
  let redis: Redis;
  let prior: Queue;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({ services: ["gateway"] });
    acme = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    globex = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    redis = new Redis(stack.redis.url);
    prior = new Queue("prior.acme", { connection: redis, prefix: stack.prefix });
  });
  afterAll(async () => {
    acme?.close();
    globex?.close();
    await prior?.close();
    redis?.disconnect();
    await stack?.stop();
  });

  /** Everything a request could have written: queued jobs and stored job records. */
  async function footprint() {
    const counts = await prior.getJobCounts("wait", "prioritized", "active", "delayed");
    const records = (await redis.keys(`${stack.prefix}:job:*`)).length;
    return { queued: Object.values(counts).reduce((a, b) => a + b, 0), records };
  }

  const invalid: [string, Partial<CreateJobRequest>][] = [
    ["request_id", { requestId: "" }],
    ["request_id", { requestId: "x".repeat(37) }],
    ["request_id", { requestId: "has space" }],
    ["user_id", { userId: "" }],
    ["user_id", { userId: "u".repeat(129) }],
    ["num_images", { numImages: 0 }],
    ["num_images", { numImages: 17 }],
    ["num_images", { numImages: -3 }],
    ["guidance", { guidance: Number.NaN }],
    ["guidance", { guidance: Number.POSITIVE_INFINITY }],
    ["guidance", { guidance: -1 }],
    ["steps", { steps: 0 }],
    ["steps", { steps: 1001 }],
    ["sampler", { sampler: 7 as Sampler }],
    ["spacing", { spacing: 9 as TimestepSpacing }],
    ["priority", { priority: -1 }],
    ["priority", { priority: 1001 }],
    ["unknown_user", { unknownUser: 9 }],
    ["labels[Bad Key]", { labels: { "Bad Key": "v" } }],
    ["labels[k]", { labels: { k: "v".repeat(257) } }],
    ["callback_url", { callbackUrl: "ftp://example.com/hook" }],
    ["callback_url", { callbackUrl: "not a url" }],
    ["callback_events", { callbackEvents: ["job.exploded"] }],
  ];

  it.each(invalid)("answers INVALID_ARGUMENT naming %s and writes nothing", async (field, patch) => {
    const before = await footprint();
    const err = await grpcError(() => acme.createJob({ requestId: "bad-1", userId: users[0]!, numImages: 1, ...patch }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(err).map((v) => v.field)).toContain(field);
    expect(await footprint()).toEqual(before);
  });

  it("reports every bad field of one request at once", async () => {
    const err = await grpcError(() => acme.createJob({ requestId: "", userId: "", numImages: 0, priority: -5 }));
    expect(
      fieldViolations(err)
        .map((v) => v.field)
        .sort(),
    ).toEqual(["num_images", "priority", "request_id", "user_id"]);
  });

  it("answers FAILED_PRECONDITION for an unknown model version and writes nothing", async () => {
    const before = await footprint();
    const err = await grpcError(() => acme.createJob({ requestId: "model-1", userId: users[0]!, modelVersion: "v-does-not-exist" }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toContain("v-does-not-exist");
    expect(await footprint()).toEqual(before);
  });

  it("answers UNAUTHENTICATED for a missing or wrong key on every RPC", async () => {
    const before = await footprint();
    for (const key of [null, "rk_wrong_key", stack.tenants.acme!.apiKey + "x"]) {
      const client = createJobClient(stack.grpcAddress, key);
      for (const call of [
        () => client.createJob({ requestId: "auth-1", userId: users[0]! }),
        () => client.getJob("job_01m89ydm9ytgbzrn9q8n0yrm08"),
        () => client.listJobs({}),
        () => client.cancelJob("job_01m89ydm9ytgbzrn9q8n0yrm08"),
      ]) {
        expect((await grpcError(call)).code).toBe(status.UNAUTHENTICATED);
      }
      const watch = collect(client.watchEvents({}));
      await expect(watch.until(() => false, 10_000)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      client.close();
    }
    expect(await footprint()).toEqual(before);
  });

  it("a repeated request_id returns the same job and enqueues nothing more", async () => {
    const first = await acme.createJob({ requestId: "idem-1", userId: users[0]!, numImages: 2 });
    const after = await footprint();
    const again = await acme.createJob({ requestId: "idem-1", userId: users[0]!, numImages: 2 });
    expect(first.deduplicated).toBe(false);
    expect(again.deduplicated).toBe(true);
    expect(again.job!.jobId).toBe(first.job!.jobId);
    expect(await footprint()).toEqual(after);
    // Request ids are per tenant: another tenant's identical id is its own job.
    const other = await globex.createJob({ requestId: "idem-1", userId: users[0]! });
    expect(other.job!.jobId).not.toBe(first.job!.jobId);
    expect(other.deduplicated).toBe(false);
  });

  it("keeps tenants apart: globex cannot read, cancel, list or watch acme's jobs", async () => {
    const { job } = await acme.createJob({ requestId: "iso-1", userId: users[1]!, labels: { team: "iso" } });
    expect((await grpcError(() => globex.getJob(job!.jobId))).code).toBe(status.NOT_FOUND);
    expect((await grpcError(() => globex.cancelJob(job!.jobId))).code).toBe(status.NOT_FOUND);
    expect((await acme.getJob(job!.jobId)).job!.state).toBe(JobState.JOB_STATE_QUEUED);
    const listed = await globex.listJobs({ pageSize: 100 });
    expect(listed.jobs.map((j) => j.jobId)).not.toContain(job!.jobId);
    const own = await acme.listJobs({ labels: { team: "iso" } });
    expect(own.jobs.map((j) => j.jobId)).toEqual([job!.jobId]);
    // globex's watch from the beginning sees only globex's own events.
    const marker = (await globex.createJob({ requestId: "iso-marker", userId: users[2]! })).job!;
    const watch = collect(globex.watchEvents({ afterEventId: "0" }));
    const seen = await watch.until((es) => es.some((e) => e.jobId === marker.jobId));
    watch.close();
    expect(seen.every((e) => e.job?.jobId !== job!.jobId)).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
  });

  it("cancels a queued job: the job leaves the queue and a worker started later does nothing with it", async () => {
    const { job } = await acme.createJob({ requestId: "cancel-1", userId: users[2]!, numImages: 2 });
    expect(await prior.getJob(job!.jobId)).toBeTruthy();
    const cancelled = await acme.cancelJob(job!.jobId);
    expect(cancelled.job!.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect(cancelled.job!.error?.code).toBe("CANCELLED");
    expect(await prior.getJob(job!.jobId)).toBeFalsy();
    // Cancelling again is a no-op that returns the same terminal job.
    expect((await acme.cancelJob(job!.jobId)).job!.state).toBe(JobState.JOB_STATE_CANCELLED);
  });

  it("pages ListJobs newest first with filters", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await acme.createJob({ requestId: `page-${i}`, userId: users[3]!, labels: { batch: "paging" } })).job!.jobId);
    const seen: string[] = [];
    let token = "";
    do {
      const page = await acme.listJobs({ pageSize: 2, pageToken: token, labels: { batch: "paging" } });
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.jobs.map((j) => j.jobId));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual([...ids].reverse());
    const queued = await acme.listJobs({ state: JobState.JOB_STATE_CANCELLED, pageSize: 100 });
    expect(queued.jobs.every((j) => j.state === JobState.JOB_STATE_CANCELLED)).toBe(true);
    expect((await grpcError(() => acme.listJobs({ pageSize: 101 }))).code).toBe(status.INVALID_ARGUMENT);
    expect((await grpcError(() => acme.listJobs({ pageToken: "garbage" }))).code).toBe(status.INVALID_ARGUMENT);
  });

  it("serves grpc.health.v1 and server reflection", async () => {
    const pkg = loadPackageDefinition(loadSync([HEALTH_PROTO, REFLECTION_PROTO], { keepCase: true, enums: String })) as any;
    const health = new pkg.grpc.health.v1.Health(stack.grpcAddress, credentials.createInsecure());
    const check = (service: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        health.Check({ service }, new Metadata(), (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r))),
      );
    expect((await check("")).status).toBe("SERVING");
    expect((await check("rebeca.v1.JobService")).status).toBe("SERVING");
    health.close();

    const reflection = new pkg.grpc.reflection.v1alpha.ServerReflection(stack.grpcAddress, credentials.createInsecure());
    const call = reflection.ServerReflectionInfo();
    const ask = (request: object) =>
      new Promise<any>((resolve, reject) => {
        call.once("data", resolve);
        call.once("error", reject);
        call.write(request);
      });
    const listed = await ask({ list_services: "" });
    expect(listed.list_services_response.service.map((s: { name: string }) => s.name)).toContain("rebeca.v1.JobService");
    const file = await ask({ file_containing_symbol: "rebeca.v1.JobService" });
    expect(file.file_descriptor_response.file_descriptor_proto.length).toBeGreaterThan(0);
    call.end();
    reflection.close();
  });
});

const GATEWAY_MODULES = `${REPO_ROOT}services/gateway/node_modules`;
/** The health and reflection protos shipped inside their npm packages. */
const HEALTH_PROTO = `${GATEWAY_MODULES}/grpc-health-check/proto/health/v1/health.proto`;
const REFLECTION_PROTO = `${GATEWAY_MODULES}/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto`;
