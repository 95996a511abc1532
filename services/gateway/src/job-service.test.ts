/*
 * JobService's logic over fakes of its ports (fakes.ts): what is stored, what is enqueued and in
 * which order a bad request is refused. The real Redis/BullMQ path is test/e2e/api.test.ts.
 */
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { stageQueue } from "@rebeca/contracts";
import { JobState, Sampler, UnknownUserPolicy, type CreateJobRequest, type CreateJobResponse } from "@rebeca/contracts/grpc";
import type { IntakeDeps } from "./intake.js";
import { createJobService } from "./job-service.js";
import { callUnary, edgeDeps, intakeDeps, memoryJobStore, metadataFor, recordingJobSink, violatedFields, type Outcome } from "./testing/fakes.js";

function request(overrides: Partial<CreateJobRequest> = {}): CreateJobRequest {
  return {
    requestId: "req-1",
    userId: "user-7",
    numImages: 2,
    sampler: Sampler.SAMPLER_UNSPECIFIED,
    priority: 0,
    unknownUser: UnknownUserPolicy.UNKNOWN_USER_POLICY_UNSPECIFIED,
    labels: {},
    callbackUrl: "",
    callbackEvents: [],
    modelVersion: "",
    ...overrides,
  } as CreateJobRequest;
}

function setUp(intake: Partial<IntakeDeps> = {}) {
  const store = memoryJobStore();
  const jobs = recordingJobSink();
  const unqueued: string[] = [];
  const { deps, asked } = intakeDeps(intake);
  const edge = edgeDeps();
  const service = createJobService({
    ...edge,
    ...deps,
    store,
    jobs,
    unqueue: async (_tenant, jobId) => (unqueued.push(jobId), true),
    hub: { subscribe: async () => ({ close() {} }) },
  });
  const create = (req: CreateJobRequest, tenant: string | null = "acme", extra: Record<string, string> = {}) =>
    callUnary(service.createJob, req, metadataFor(tenant, extra)) as Promise<Outcome<CreateJobResponse>>;
  return { service, store, jobs, unqueued, asked, edge, create };
}

const jobOf = (o: Outcome<CreateJobResponse>) => {
  if (!o.ok) throw new Error(`${status[o.err.code]}: ${o.err.details}`);
  return o.res;
};

describe("CreateJob", () => {
  it("stores the job with the model's defaults and enqueues it in the tenant's interactive prior queue", async () => {
    const { create, store, jobs, edge } = setUp();
    const { job, deduplicated } = jobOf(await create(request()));
    expect(deduplicated).toBe(false);
    expect(job!.jobId).toMatch(/^job_[0-9a-z]{26}$/);
    expect(job!.state).toBe(JobState.JOB_STATE_QUEUED);
    const stored = store.records.get(job!.jobId)!;
    expect(stored).toMatchObject({ tenant: "acme", userId: "user-7", numImages: 2, guidance: 3, sampler: "ddpm", steps: 1000, modelVersion: "demo-v1" });
    expect(jobs.added).toHaveLength(1);
    expect(jobs.added[0]).toMatchObject({ queue: stageQueue("prior", "acme", "interactive"), name: "sample", opts: { jobId: job!.jobId } });
    expect(jobs.added[0]!.data).toMatchObject({ jobId: job!.jobId, seed: stored.seed, steps: 1000, sampler: "ddpm" });
    expect((await edge.metrics.jobsCreated.get()).values[0]!.value).toBe(1);
  });

  it("answers a repeated request id with the first job, enqueues it again while it is queued, and counts it once", async () => {
    const { create, store, jobs, edge } = setUp();
    const first = jobOf(await create(request()));
    const again = jobOf(await create(request({ numImages: 5 })));
    expect(again.deduplicated).toBe(true);
    expect(again.job!.jobId).toBe(first.job!.jobId);
    expect(again.job!.numImages).toBe(2);
    expect(store.records.size).toBe(1);
    // The first attempt may have stored the job and failed before its add: the repeat adds it
    // (under the same job id, which the queue takes once).
    expect(jobs.added.map((j) => j.opts.jobId)).toEqual([first.job!.jobId, first.job!.jobId]);
    expect((await edge.metrics.jobsCreated.get()).values[0]!.value).toBe(1);
  });

  it("does not enqueue a repeat of a job that already left the queue", async () => {
    const { create, store, jobs } = setUp();
    const first = jobOf(await create(request()));
    await store.transition(first.job!.jobId, "sampling");
    jobOf(await create(request()));
    expect(jobs.added).toHaveLength(1);
  });

  it("keeps request ids per tenant", async () => {
    const { create, store } = setUp();
    const a = jobOf(await create(request(), "acme"));
    const b = jobOf(await create(request(), "globex"));
    expect(a.job!.jobId).not.toBe(b.job!.jobId);
    expect(store.records.get(b.job!.jobId)!.tenant).toBe("globex");
  });

  it("describes every bad field at once, before saying the model is not deployed", async () => {
    const { create, store, jobs, asked } = setUp();
    const bad = await create(request({ numImages: 0, priority: 5000, modelVersion: "nope" }));
    expect(violatedFields(bad)).toEqual(["num_images", "priority"]);
    const onlyModel = await create(request({ modelVersion: "nope" }));
    expect(onlyModel.ok).toBe(false);
    if (!onlyModel.ok) {
      expect(onlyModel.err.code).toBe(status.FAILED_PRECONDITION);
      expect(onlyModel.err.details).toContain('model version "nope" is not deployed; available: demo-v1');
    }
    expect(store.records.size).toBe(0);
    expect(jobs.added).toHaveLength(0);
    expect(asked.admissions).toEqual([]);
  });

  it("refuses a callback URL the guard refuses, as a callback_url violation, before admission", async () => {
    const { create, store, asked } = setUp({ callbackGuard: async () => "resolves to a private address" });
    const out = await create(request({ callbackUrl: "http://10.0.0.1/hook" }));
    expect(violatedFields(out)).toEqual(["callback_url"]);
    expect(out.ok || out.err.details).toContain("resolves to a private address");
    expect(asked.admissions).toEqual([]);
    expect(store.records.size).toBe(0);
  });

  it("asks the guard only when there is a callback URL", async () => {
    const { create, asked } = setUp();
    jobOf(await create(request()));
    jobOf(await create(request({ requestId: "req-2", callbackUrl: "https://hooks.example.com/x" })));
    expect(asked.callbackUrls).toEqual(["https://hooks.example.com/x"]);
  });

  it("answers an overloaded tenant RESOURCE_EXHAUSTED with its retry delay and writes nothing", async () => {
    const { create, store, jobs } = setUp({ admission: async (tenant) => ({ reason: `${tenant} is over its backlog`, retryAfterSeconds: 10 }) });
    const out = await create(request());
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(out.err.details).toBe("acme is over its backlog");
      expect(out.err.metadata!.get("grpc-status-details-bin")).toHaveLength(1);
    }
    expect(store.records.size).toBe(0);
    expect(jobs.added).toHaveLength(0);
  });

  it("joins the caller's trace: same trace id, a new span", async () => {
    const { create, store } = setUp();
    const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const { job } = jobOf(await create(request(), "acme", { traceparent: parent }));
    const traceparent = store.records.get(job!.jobId)!.traceparent;
    expect(traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(traceparent).not.toBe(parent);
  });

  it("authenticates before anything else", async () => {
    const { create, store, asked } = setUp();
    const out = await create(request({ numImages: 0 }), null);
    expect(out.ok || out.err.code).toBe(status.UNAUTHENTICATED);
    expect(asked.callbackUrls).toEqual([]);
    expect(store.records.size).toBe(0);
  });
});

describe("GetJob, ListJobs, CancelJob", () => {
  it("reports another tenant's job exactly like a missing one, and refuses a malformed id", async () => {
    const { create, service } = setUp();
    const { job } = jobOf(await create(request()));
    const theirs = await callUnary(service.getJob, { jobId: job!.jobId }, metadataFor("globex"));
    const missing = await callUnary(service.getJob, { jobId: "job_00000000000000000000000000" }, metadataFor("globex"));
    expect(theirs.ok || theirs.err.code).toBe(status.NOT_FOUND);
    expect(missing.ok || missing.err.code).toBe(status.NOT_FOUND);
    expect(violatedFields(await callUnary(service.getJob, { jobId: "batch_00000000000000000000000000" }, metadataFor("acme")))).toEqual(["job_id"]);
    const mine = await callUnary(service.getJob, { jobId: job!.jobId }, metadataFor("acme"));
    expect(mine.ok && mine.res.job!.jobId).toBe(job!.jobId);
  });

  it("lists every paging and filter problem at once", async () => {
    const { service } = setUp();
    const labels = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    const out = await callUnary(
      service.listJobs,
      { pageSize: 101, pageToken: "batch_00000000000000000000000000", state: 99, userId: "", labels },
      metadataFor("acme"),
    );
    expect(violatedFields(out)).toEqual(["page_size", "page_token", "state", "labels"]);
  });

  it("pages a tenant's jobs newest first (by id), filtered by label", async () => {
    const { service, create } = setUp();
    const even: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { job } = jobOf(await create(request({ requestId: `r${i}`, labels: { run: i % 2 === 0 ? "even" : "odd" } })));
      if (i % 2 === 0) even.push(job!.jobId);
    }
    jobOf(await create(request({ requestId: "other" }), "globex"));
    // Ids sort by creation time (to the millisecond; ties in a millisecond sort by their random tail).
    const newestFirst = [...even].sort().reverse();
    const list = (pageToken: string) =>
      callUnary(service.listJobs, { pageSize: 2, pageToken, state: 0, userId: "", labels: { run: "even" } }, metadataFor("acme"));
    const first = await list("");
    if (!first.ok) throw new Error(first.err.details);
    expect(first.res.jobs.map((j) => j.jobId)).toEqual(newestFirst.slice(0, 2));
    const second = await list(first.res.nextPageToken);
    if (!second.ok) throw new Error(second.err.details);
    expect(second.res.jobs.map((j) => j.jobId)).toEqual(newestFirst.slice(2));
  });

  it("cancels a queued job and takes it out of its queue; a finished job is answered as it is", async () => {
    const { service, create, store, unqueued } = setUp();
    const a = jobOf(await create(request({ requestId: "a" }))).job!;
    const b = jobOf(await create(request({ requestId: "b" }))).job!;
    await store.transition(b.jobId, "sampling");
    await store.transition(b.jobId, "decoding");
    await store.transition(b.jobId, "succeeded");

    const cancelled = await callUnary(service.cancelJob, { jobId: a.jobId }, metadataFor("acme"));
    expect(cancelled.ok && cancelled.res.job!.state).toBe(JobState.JOB_STATE_CANCELLED);
    expect(store.records.get(a.jobId)!.error).toEqual({ code: "CANCELLED", message: "cancelled by the client" });
    const finished = await callUnary(service.cancelJob, { jobId: b.jobId }, metadataFor("acme"));
    expect(finished.ok && finished.res.job!.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(unqueued).toEqual([a.jobId]);
  });
});
