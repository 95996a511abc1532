/**
 * Per-tenant usage and quotas on the real stack: GetUsage and the workers' Prometheus counters
 * count what a tenant generated; the CLI prints it; quotas refuse with RESOURCE_EXHAUSTED and a
 * google.rpc.QuotaFailure.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createDataClient, createJobClient, REPO_ROOT, startStack, type Stack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { grpcError, quotaViolations } from "../support/grpc-errors.js";
import { untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

describe("usage per tenant and quotas", () => {
  let stack: Stack;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({
      services: ["gateway", "prior-worker", "decoder-worker"],
      env: { gateway: { TENANT_QUOTAS: JSON.stringify({ acme: { imagesPerDay: 6 }, globex: { concurrentBatches: 1 } }) } },
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
      expect(quotaViolations(refused)).toEqual([{ subject: "tenant:acme", description: "images per day: 6 generated today, 1 asked, limit 6" }]);

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
