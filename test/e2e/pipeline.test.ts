import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { PNG } from "pngjs";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobClient, REPO_ROOT, startStack, startWebhookReceiver, type JobClient, type Stack, type WebhookReceiver } from "@rebeca/devstack";
import { JobState, Sampler, TimestepSpacing, UnknownUserPolicy } from "@rebeca/contracts/grpc";
import type { SamplerName, SpacingName } from "@rebeca/contracts";
import { toProtoSampler, toProtoSpacing } from "@rebeca/contracts/sampler-enums";
import { collect } from "../support/events.js";
import { modelUserIds } from "../support/world.js";

const TERMINAL = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

describe("pipeline end to end: gRPC → prior → decoder → S3 → events and signed callbacks", () => {
  let stack: Stack;
  let acme: JobClient;
  let s3: S3Client;
  let receiver: WebhookReceiver;
  const users = modelUserIds();

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack();
    acme = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
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
    acme?.close();
    await stack?.stop();
    await receiver?.close();
  });

  async function finished(client: JobClient, jobId: string) {
    const watch = collect(client.watchEvents({ jobId, afterEventId: "0" }));
    try {
      const events = await watch.until((es) => es.some((e) => TERMINAL.has(e.state)));
      return { job: (await client.getJob(jobId)).job!, events };
    } finally {
      watch.close();
    }
  }

  async function objectBytes(uri: string): Promise<Buffer> {
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  it("stores valid PNGs of the decoder's size with matching sha256, and embeddings, under the tenant prefix", async () => {
    const { job: created } = await acme.createJob({ requestId: "png-1", userId: users[0]!, numImages: 3, seed: 11 });
    const { job, events } = await finished(acme, created!.jobId);
    expect(job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(events.map((e) => e.type)).toEqual(["job.queued", "job.sampling", "job.decoding", "job.succeeded"]);
    expect(job.outputs).toHaveLength(3);
    const hashes = new Set<string>();
    for (const out of job.outputs) {
      expect(out.uri).toMatch(new RegExp(`^s3://${stack.s3.bucket}/tenants/acme/jobs/${job.jobId}/images/${out.index}\\.png$`));
      const bytes = await objectBytes(out.uri);
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(out.sha256);
      expect(bytes.length).toBe(out.bytes);
      const png = PNG.sync.read(bytes);
      expect([png.width, png.height]).toEqual([28, 28]);
      expect([out.width, out.height]).toEqual([28, 28]);
      hashes.add(out.sha256);
    }
    expect(hashes.size).toBe(3); // different seeds give different images
    const embeddings = await objectBytes(job.outputs[0]!.embeddingUri);
    expect(embeddings.length).toBe(3 * 64 * 4);
  });

  it("gives the same images for the same seed and user, and different ones for another user", async () => {
    const a = (await acme.createJob({ requestId: "seed-a", userId: users[1]!, numImages: 2, seed: 99 })).job!;
    const b = (await acme.createJob({ requestId: "seed-b", userId: users[1]!, numImages: 2, seed: 99 })).job!;
    const c = (await acme.createJob({ requestId: "seed-c", userId: users[2]!, numImages: 2, seed: 99 })).job!;
    const [ja, jb, jc] = await Promise.all([a, b, c].map((j) => finished(acme, j.jobId)));
    expect(ja!.job.outputs.map((o) => o.sha256)).toEqual(jb!.job.outputs.map((o) => o.sha256));
    expect(jc!.job.outputs[0]!.sha256).not.toBe(ja!.job.outputs[0]!.sha256);
  });

  it("runs the paper's 1000-step DDPM sampler", async () => {
    const { job } = await acme.createJob({ requestId: "ddpm-1", userId: users[3]!, numImages: 2, sampler: Sampler.SAMPLER_DDPM, seed: 5 });
    expect(job!.steps).toBe(1000);
    const done = await finished(acme, job!.jobId);
    expect(done.job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.job.outputs).toHaveLength(2);
  });

  it("serves the manifest's default sampler when none is named, and the DPM-Solver++ SDE sampler with a chosen spacing when asked", async () => {
    const { defaults } = JSON.parse(readFileSync(join(REPO_ROOT, "models", "demo-v1", "manifest.json"), "utf8")) as {
      defaults: { sampler: SamplerName; steps: number; spacing: SpacingName };
    };
    const plain = (await acme.createJob({ requestId: "default-1", userId: users[5]!, numImages: 1, seed: 3 })).job!;
    expect(plain).toMatchObject({ sampler: toProtoSampler(defaults.sampler), steps: defaults.steps, spacing: toProtoSpacing(defaults.spacing) });
    const sde = (
      await acme.createJob({
        requestId: "sde-1",
        userId: users[5]!,
        numImages: 2,
        seed: 3,
        sampler: Sampler.SAMPLER_DPMPP_2M_SDE,
        steps: 5,
        spacing: TimestepSpacing.TIMESTEP_SPACING_LEADING,
      })
    ).job!;
    expect(sde).toMatchObject({ sampler: Sampler.SAMPLER_DPMPP_2M_SDE, steps: 5, spacing: TimestepSpacing.TIMESTEP_SPACING_LEADING });
    const [a, b] = await Promise.all([finished(acme, plain.jobId), finished(acme, sde.jobId)]);
    expect([a!.job.state, b!.job.state]).toEqual([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_SUCCEEDED]);
    // same user and seed, another sampler: another image
    expect(b!.job.outputs[0]!.sha256).not.toBe(a!.job.outputs[0]!.sha256);
  });

  it("rejects unknown users by default and serves them the population prior when asked", async () => {
    const rejected = await finished(acme, (await acme.createJob({ requestId: "unknown-1", userId: "no-such-user" })).job!.jobId);
    expect(rejected.job.state).toBe(JobState.JOB_STATE_FAILED);
    expect(rejected.job.error?.code).toBe("UNKNOWN_USER");
    expect(rejected.job.outputs).toHaveLength(0);
    const served = await finished(
      acme,
      (await acme.createJob({ requestId: "unknown-2", userId: "no-such-user", unknownUser: UnknownUserPolicy.UNKNOWN_USER_POLICY_POPULATION })).job!.jobId,
    );
    expect(served.job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(served.job.populationPrior).toBe(true);
    expect(served.job.outputs).toHaveLength(1);
  });

  it("sends signed Standard Webhooks callbacks that verify with the standardwebhooks library", async () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const { job } = await acme.createJob(
      { requestId: "cb-1", userId: users[4]!, numImages: 1, callbackUrl: receiver.url, labels: { campaign: "spring" } },
      { traceparent },
    );
    await receiver.until((all) => all.some((r) => r.body.includes(job!.jobId)));
    const hook = receiver.received.find((r) => r.body.includes(job!.jobId))!;
    const verified = new Webhook(stack.tenants.acme!.webhookSecret).verify(hook.body, {
      "webhook-id": String(hook.headers["webhook-id"]),
      "webhook-timestamp": String(hook.headers["webhook-timestamp"]),
      "webhook-signature": String(hook.headers["webhook-signature"]),
    }) as { type: string; data: { job_id: string; state: string; outputs: { uri: string }[]; labels: Record<string, string> } };
    // Only terminal events by default, and a thin payload: links, not bytes.
    expect(verified.type).toBe("job.succeeded");
    expect(verified.data.job_id).toBe(job!.jobId);
    expect(verified.data.outputs[0]!.uri).toMatch(/^s3:\/\//);
    expect(verified.data.labels).toEqual({ campaign: "spring" });
    expect(hook.body.length).toBeLessThan(20_000);
    // The caller's trace (W3C traceparent) reaches the callback: same trace id, a later span.
    expect(String(hook.headers.traceparent)).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(String(hook.headers.traceparent)).not.toContain("00f067aa0ba902b7");
    // Another tenant's secret does not verify it.
    expect(() =>
      new Webhook(stack.tenants.globex!.webhookSecret).verify(hook.body, {
        "webhook-id": String(hook.headers["webhook-id"]),
        "webhook-timestamp": String(hook.headers["webhook-timestamp"]),
        "webhook-signature": String(hook.headers["webhook-signature"]),
      }),
    ).toThrow();
  });

  it("delivers only the event types a job's callback filter names", async () => {
    const { job } = await acme.createJob({
      requestId: "cb-filter",
      userId: users[5]!,
      callbackUrl: receiver.url,
      callbackEvents: ["job.sampling", "job.succeeded"],
    });
    await receiver.until((all) => all.filter((r) => r.body.includes(job!.jobId)).length >= 2);
    await finished(acme, job!.jobId);
    const types = receiver.received.filter((r) => r.body.includes(job!.jobId)).map((r) => (JSON.parse(r.body) as { type: string }).type);
    expect(types.sort()).toEqual(["job.sampling", "job.succeeded"]);
  });

  it("WatchEvents resumes from an event id without gaps or repeats", async () => {
    const label = { run: "resume" };
    const all = collect(acme.watchEvents({ labels: label, afterEventId: "0" }));
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await acme.createJob({ requestId: `resume-${i}`, userId: users[i]!, labels: label })).job!.jobId);
    const full = await all.until((es) => ids.every((id) => es.some((e) => e.jobId === id && e.type === "job.succeeded")));
    all.close();
    // Resume from the middle of the history: exactly the events after it, in order.
    const cut = Math.floor(full.length / 2);
    const resumed = collect(acme.watchEvents({ labels: label, afterEventId: full[cut - 1]!.eventId }));
    const rest = await resumed.until((es) => es.length >= full.length - cut);
    resumed.close();
    expect(rest.map((e) => e.eventId)).toEqual(full.slice(cut).map((e) => e.eventId));
    expect(new Set(full.map((e) => e.eventId)).size).toBe(full.length);
    expect(full.filter((e) => e.jobId === ids[0]).map((e) => e.type)).toEqual(["job.queued", "job.sampling", "job.decoding", "job.succeeded"]);
  });

  it("WatchEvents replays history and then follows live events across the seam", async () => {
    const label = { run: "seam" };
    const first = (await acme.createJob({ requestId: "seam-0", userId: users[6]!, labels: label })).job!;
    await finished(acme, first.jobId);
    const watch = collect(acme.watchEvents({ labels: label, afterEventId: "0" }));
    await watch.until((es) => es.length === 4);
    const second = (await acme.createJob({ requestId: "seam-1", userId: users[7]!, labels: label })).job!;
    const events = await watch.until((es) => es.some((e) => e.jobId === second.jobId && e.type === "job.succeeded"));
    watch.close();
    expect(events.map((e) => e.jobId)).toEqual([...Array(4).fill(first.jobId), ...Array(4).fill(second.jobId)]);
  });

  it("every service serves Prometheus metrics and health", async () => {
    const texts: Record<string, string> = {};
    for (const svc of Object.values(stack.services)) {
      const base = `http://127.0.0.1:${svc!.httpPort}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      texts[svc!.name] = await (await fetch(`${base}/metrics`)).text();
    }
    expect(texts.gateway).toMatch(/rebeca_gateway_requests_total\{[^}]*method="CreateJob"[^}]*code="OK"/);
    expect(texts.gateway).toMatch(/rebeca_queue_backlog_total_jobs\{[^}]*queue="prior"/);
    expect(texts["prior-worker"]).toMatch(/rebeca_stage_duration_seconds_count\{[^}]*queue="prior"[^}]*\} [1-9]/);
    expect(texts["prior-worker"]).toMatch(/rebeca_prior_batch_rows_bucket/);
    expect(texts["decoder-worker"]).toMatch(/rebeca_decoder_images_total\{[^}]*\} [1-9]/);
    expect(texts["decoder-worker"]).toMatch(/rebeca_stage_queue_wait_seconds_bucket\{[^}]*queue="decode"/);
    expect(texts["decoder-worker"]).toMatch(/rebeca_jobs_finished_total\{[^}]*state="succeeded"[^}]*\} [1-9]/);
    expect(texts["prior-worker"]).toMatch(/rebeca_jobs_finished_total\{[^}]*state="failed"[^}]*\} [1-9]/); // the unknown user
    expect(texts.notifier).toMatch(/rebeca_callback_deliveries_total\{[^}]*outcome="delivered"[^}]*\} [1-9]/);
  });
});
