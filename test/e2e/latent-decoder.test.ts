// A latent-diffusion model version end to end: gRPC → prior → micro-batched latent decoder → S3.
// The version is assembled in a temporary MODELS_DIR from the committed demo prior and the tiny
// latent fixture (packages/inference/test-fixtures/latent-tiny), so nothing large is committed.
import { rmSync } from "node:fs";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleLatentModelsDir, createJobClient, REPO_ROOT, startStack, type JobClient, type Stack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { collect } from "../support/events.js";
import { modelUserIds } from "../support/world.js";

const TERMINAL = new Set([JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED, JobState.JOB_STATE_CANCELLED]);

function counter(metrics: string, name: string): number {
  return metrics
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

describe("latent-diffusion decoder through the worker", () => {
  let stack: Stack;
  let acme: JobClient;
  let s3: S3Client;
  let modelsDir: string;
  const users = modelUserIds();

  beforeAll(async () => {
    modelsDir = assembleLatentModelsDir(`${REPO_ROOT}packages/inference/test-fixtures/latent-tiny`);
    stack = await startStack({
      modelsDir,
      services: ["gateway", "prior-worker", "decoder-worker"],
      env: {
        "*": { DEFAULT_MODEL_VERSION: "latent-v1" },
        "decoder-worker": { LATENT_STEPS: "4", DECODE_MAX_BATCH: "8", DECODE_MAX_WAIT_MS: "20", CONCURRENCY: "8" },
      },
    });
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
    if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
  });

  async function finished(jobId: string) {
    const watch = collect(acme.watchEvents({ jobId, afterEventId: "0" }));
    try {
      await watch.until((es) => es.some((e) => TERMINAL.has(e.state)));
      return (await acme.getJob(jobId)).job!;
    } finally {
      watch.close();
    }
  }

  it("decodes RGB PNGs of the manifest's size; the same request seed gives the same bytes; every image is counted by the batcher", async () => {
    expect(stack.services["decoder-worker"]!.started["versions"]).toEqual(["latent-v1"]);
    const created = await Promise.all(
      [0, 1, 2, 3].map((i) => acme.createJob({ requestId: `lat-${i}`, userId: users[i % 2]!, numImages: 2, seed: 7, modelVersion: "latent-v1" })),
    );
    const jobs = await Promise.all(created.map((c) => finished(c.job!.jobId)));
    for (const job of jobs) {
      expect(job.state).toBe(JobState.JOB_STATE_SUCCEEDED);
      expect(job.outputs).toHaveLength(2);
    }
    const bytes = async (uri: string) => {
      const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
      return Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());
    };
    const png = PNG.sync.read(await bytes(jobs[0]!.outputs[0]!.uri));
    expect([png.width, png.height]).toEqual([32, 32]);
    // jobs 0 and 2 share user and seed: identical images, whichever batches they were decoded in
    expect(jobs[2]!.outputs.map((o) => o.sha256)).toEqual(jobs[0]!.outputs.map((o) => o.sha256));
    expect(jobs[1]!.outputs[0]!.sha256).not.toBe(jobs[0]!.outputs[0]!.sha256);

    const metrics = await (await fetch(`http://127.0.0.1:${stack.services["decoder-worker"]!.httpPort}/metrics`)).text();
    expect(counter(metrics, "rebeca_decoder_batch_inferences_total")).toBe(8);
    const executions = counter(metrics, "rebeca_decoder_batch_executions_total");
    expect(executions).toBeGreaterThanOrEqual(1);
    expect(executions).toBeLessThanOrEqual(4);
  });
});

describe("decoder worker with REQUIRE_GPU on a machine without a usable GPU provider", () => {
  it("exits at start-up with the reason, instead of decoding on the CPU", async () => {
    const modelsDir = assembleLatentModelsDir(`${REPO_ROOT}packages/inference/test-fixtures/latent-tiny`);
    try {
      const started = Date.now();
      const err = await startStack({
        modelsDir,
        services: ["decoder-worker"],
        env: { "decoder-worker": { ORT_PROVIDERS: "cuda,webgpu,cpu", REQUIRE_GPU: "true" } },
      }).then(
        async (stack) => (await stack.stop(), undefined),
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/decoder-worker exited with 1/);
      expect(err?.message).toMatch(/requireGpu is set but no GPU execution provider is usable; refusing CPU fallback \(cuda: .*; webgpu: /);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      rmSync(modelsDir, { recursive: true, force: true });
    }
  });
});
