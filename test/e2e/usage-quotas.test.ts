/**
 * Per-tenant usage and quotas on the real stack: GetUsage and the workers' Prometheus counters
 * count what a tenant generated; the CLI prints it; quotas refuse with RESOURCE_EXHAUSTED and a
 * google.rpc.QuotaFailure.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createDataClient, createJobClient, REPO_ROOT, startStack, type Stack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { grpcError, quotaViolations } from "../support/grpc-errors.js";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

describe("usage per tenant and quotas", () => {
  let stack: Stack;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({
      services: ["gateway", "prior-worker", "decoder-worker"],
      tenants: ["acme", "globex", "initech"],
      env: { gateway: { TENANT_QUOTAS: JSON.stringify({ acme: { imagesPerDay: 6 }, globex: { concurrentBatches: 1 }, initech: { imagesPerDay: 8 } }) } },
    });
  });
  afterAll(async () => stack?.stop());

  it("counts a tenant's images, embeddings, seconds and bytes per day; refuses past its images per day", async () => {
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const data = createDataClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const globexData = createDataClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    try {
      let bytes = 0;
      for (let i = 0; i < 3; i++) {
        const { job } = await jobs.createJob({ requestId: `u-${i}`, userId: users[i]!, numImages: 2 });
        const done = await untilJobDone(jobs, job!.jobId);
        expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
        bytes += done.outputs.reduce((s, o) => s + o.bytes, 0);
      }
      // Usage is written just after a job finishes, off its path: wait for the last write.
      let today;
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        today = (await data.getUsage()).days.at(-1)!;
        if (today.images === 6 && today.priorSeconds > 0 && today.decoderSeconds > 0) break;
      }
      expect(today).toMatchObject({ day: new Date().toISOString().slice(0, 10), images: 6, embeddings: 6, bytesStored: bytes });
      expect(today!.priorSeconds).toBeGreaterThan(0);
      expect(today!.decoderSeconds).toBeGreaterThan(0);
      expect((await data.getUsage()).days).toHaveLength(30);
      expect((await globexData.getUsage()).days.at(-1)!.images).toBe(0);
      expect((await grpcError(() => data.getUsage("2026-12-05", "2026-12-01"))).code).toBe(status.INVALID_ARGUMENT);

      const metrics = await (await fetch(`http://127.0.0.1:${stack.services["decoder-worker"]!.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/rebeca_usage_images_total\{[^}]*tenant="acme"[^}]*\} 6/);

      // The console's usage page shows the tenant its own days only.
      const page = await (await fetch(`${stack.consoleUrl}/usage`, { headers: { authorization: `Bearer ${stack.tenants.acme!.apiKey}` } })).text();
      expect(page).toContain("<h2>acme</h2><p>6 images in the last 30 days</p>");
      expect(page).not.toContain("globex");

      const refused = await grpcError(() => jobs.createJob({ requestId: "u-over", userId: users[0]!, numImages: 1 }));
      expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(quotaViolations(refused)).toEqual([
        { subject: "tenant:acme", description: "images per day: 6 counted today (made or reserved by running batches), 1 asked, limit 6" },
      ]);

      const cli = await promisify(execFile)(process.execPath, [`${REPO_ROOT}packages/cli/dist/main.js`, "usage"], {
        env: { ...process.env, REBECA_ADDRESS: stack.grpcAddress, REBECA_API_KEY: stack.tenants.acme!.apiKey },
      });
      const last = cli.stdout.trim().split("\n").at(-1)!.split("\t");
      expect(last.slice(0, 3)).toEqual([today!.day, "6", "6"]);
      expect(last[5]).toBe(String(bytes));
    } finally {
      jobs.close();
      data.close();
      globexData.close();
    }
  });

  it("counts a batch's images against the images per day when it is admitted: exactly the quota passes, one over is refused with nothing changed", async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.initech!.apiKey);
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.initech!.apiKey);
    try {
      // 9 users × 1 image against a quota of 8: refused before the batch exists.
      const over = await grpcError(() => batches.createBatch({ requestId: "over", numImages: 1 }, chunksOf(users.slice(0, 9), 10)));
      expect(over.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(quotaViolations(over)).toEqual([
        { subject: "tenant:initech", description: "images per day: 0 counted today (made or reserved by running batches), 9 asked, limit 8" },
      ]);
      expect((await batches.listBatches()).batches).toEqual([]);
      const queue = new Queue("prior-batch.initech", { connection: { url: stack.redis.url }, prefix: stack.prefix });
      expect(await queue.count()).toBe(0);
      await queue.close();

      // 4 users × 2 images: exactly the quota, admitted and run.
      const exact = await batches.createBatch({ requestId: "exact", numImages: 2 }, chunksOf(users.slice(0, 4), 10));
      expect((await untilBatchCompleted(batches, exact.batchId)).counts).toMatchObject({ succeeded: 4 });
      // Usage is written just after the images, off their path: wait for it (the reservation is released at the batch's end).
      const data = createDataClient(stack.grpcAddress, stack.tenants.initech!.apiKey);
      for (const until = Date.now() + 10_000; Date.now() < until && (await data.getUsage()).days.at(-1)!.images < 8;)
        await new Promise((r) => setTimeout(r, 50));
      data.close();
      // The day is spent: one image more is refused, for a job as for a batch (made images count once).
      const job = await grpcError(() => jobs.createJob({ requestId: "one-more", userId: users[0]!, numImages: 1 }));
      expect(job.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(quotaViolations(job)[0]!.description).toBe("images per day: 8 counted today (made or reserved by running batches), 1 asked, limit 8");
      expect((await grpcError(() => batches.createBatch({ requestId: "one-more", numImages: 1 }, chunksOf(users.slice(0, 1), 10)))).code).toBe(
        status.RESOURCE_EXHAUSTED,
      );
      expect((await batches.listBatches()).batches.map((b) => b.batchId)).toEqual([exact.batchId]);
    } finally {
      batches.close();
      jobs.close();
    }
  });

  it("refuses a batch past the tenant's concurrent batches with a QuotaFailure", async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    try {
      // A batch whose stream broke off stays RECEIVING: it counts as running.
      const stored = async () => {
        while ((await batches.listBatches()).batches.length === 0) await new Promise((r) => setTimeout(r, 20));
      };
      await batches.createBatch({ requestId: "open" }, chunksOf(users.slice(0, 20), 10), { abortAfter: 1, beforeAbort: stored }).catch(() => undefined);
      const open = (await batches.listBatches()).batches;
      expect(open).toHaveLength(1);
      const refused = await grpcError(() => batches.createBatch({ requestId: "second" }, chunksOf(users.slice(0, 4), 10)));
      expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(quotaViolations(refused)[0]!.description).toBe("concurrent batches: 1 running, limit 1");
      expect((await batches.listBatches()).batches).toHaveLength(1);
    } finally {
      batches.close();
    }
  });
});
