// Output retention end to end: jobs and batches submitted with an output_ttl (or a tenant default)
// lose exactly their objects to the monitor's retention sweeper once the lifetime has run out from
// their end, checked by listing the bucket before and after; the rest is untouched, and GetJob /
// GetBatch say the outputs are gone instead of handing out dead URIs.
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type BatchClient, type JobClient, type Stack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";
import { metricSum } from "../support/metrics.js";
import { s3Of } from "../support/invariants.js";
import { modelUserIds } from "../support/world.js";

describe("output retention", () => {
  let stack: Stack;
  let acme: JobClient;
  let acmeBatches: BatchClient;
  let globex: JobClient;
  let s3: S3Client;
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({
      services: ["gateway", "prior-worker", "decoder-worker", "monitor"],
      env: {
        // globex keeps its outputs a minute unless a request says otherwise; acme keeps them.
        gateway: { SHARD_SIZE: "4", TENANT_OUTPUT_TTL: "globex=60s" },
        monitor: { MONITOR_SAMPLE_RATE: "0", RETENTION_SWEEP_INTERVAL_MS: "500", RETENTION_SWEEP_MAX_OWNERS: "2" },
      },
    });
    acme = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    acmeBatches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    globex = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    s3 = s3Of(stack);
  });
  afterAll(async () => {
    acme?.close();
    acmeBatches?.close();
    globex?.close();
    await stack?.stop();
  });

  async function bucket(): Promise<Set<string>> {
    const keys = new Set<string>();
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: stack.s3.bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) keys.add(o.Key!);
      token = page.NextContinuationToken;
    } while (token);
    return keys;
  }
  const under = (keys: Set<string>, prefix: string) => [...keys].filter((k) => k.startsWith(prefix));

  it("a sweep deletes exactly the expired outputs, and the API says they are gone", async () => {
    // Expiring: a job with its own 60 s lifetime, one under globex's default, a batch with 60 s.
    // Kept: a job without one, a job and a batch with a day.
    const short = (await acme.createJob({ requestId: "r-short", userId: users[0]!, numImages: 2, outputTtl: "60s" })).job!;
    const tenantDefault = (await globex.createJob({ requestId: "r-default", userId: users[1]!, numImages: 1 })).job!;
    const kept = (await acme.createJob({ requestId: "r-kept", userId: users[2]!, numImages: 1 })).job!;
    const day = (await acme.createJob({ requestId: "r-day", userId: users[3]!, numImages: 1, outputTtl: "1d" })).job!;
    const shortBatch = await acmeBatches.createBatch({ requestId: "rb-short", numImages: 1, outputTtl: "60s" }, chunksOf(users.slice(0, 10), 10));
    const dayBatch = await acmeBatches.createBatch({ requestId: "rb-day", numImages: 1, outputTtl: "1d" }, chunksOf(users.slice(10, 14), 4));
    expect(tenantDefault.outputsExpireTime).toBe(""); // dated from the end, which has not come yet

    for (const j of [short, kept, day]) expect((await untilJobDone(acme, j.jobId)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const globexDone = await untilJobDone(globex, tenantDefault.jobId);
    expect(globexDone.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(Date.parse(globexDone.outputsExpireTime) - Date.parse(globexDone.endTime)).toBe(60_000);
    for (const b of [shortBatch, dayBatch]) expect((await untilBatchCompleted(acmeBatches, b.batchId)).state).toBe(BatchState.BATCH_STATE_COMPLETED);

    const before = await bucket();
    const expiring = [`tenants/acme/jobs/${short.jobId}/`, `tenants/globex/jobs/${tenantDefault.jobId}/`, `tenants/acme/batches/${shortBatch.batchId}/`];
    for (const p of expiring) expect(under(before, p).length, p).toBeGreaterThan(0);
    expect(under(before, `tenants/acme/batches/${shortBatch.batchId}/`)).toContain(`tenants/acme/batches/${shortBatch.batchId}/results.jsonl`);

    // Wait (on the sweeper's own metric) until the three owners are swept.
    const monitorUrl = `http://127.0.0.1:${stack.services.monitor!.httpPort}/metrics`;
    const until = Date.now() + 150_000;
    let text = "";
    for (;;) {
      text = await (await fetch(monitorUrl)).text();
      if (metricSum(text, "rebeca_retention_owners_swept_total") >= 3 || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(metricSum(text, "rebeca_retention_owners_swept_total", { kind: "job" })).toBe(2);
    expect(metricSum(text, "rebeca_retention_owners_swept_total", { kind: "batch" })).toBe(1);

    const after = await bucket();
    const gone = [...before].filter((k) => !after.has(k)).sort();
    const expected = expiring.flatMap((p) => under(before, p)).sort();
    expect(gone).toEqual(expected);
    expect([...after].filter((k) => !before.has(k))).toEqual([]);
    expect(metricSum(text, "rebeca_retention_objects_deleted_total")).toBe(expected.length);

    const swept = (await acme.getJob(short.jobId)).job!;
    expect(swept).toMatchObject({ state: JobState.JOB_STATE_SUCCEEDED, outputsDeleted: true, outputs: [] });
    expect(Date.parse(swept.outputsDeleteTime)).toBeGreaterThanOrEqual(Date.parse(swept.outputsExpireTime));
    expect((await globex.getJob(tenantDefault.jobId)).job!.outputsDeleted).toBe(true);
    const sweptBatch = await acmeBatches.getBatch(shortBatch.batchId);
    expect(sweptBatch).toMatchObject({ state: BatchState.BATCH_STATE_COMPLETED, outputsDeleted: true, resultManifestUri: "" });
    for (const j of [kept, day]) {
      const k = (await acme.getJob(j.jobId)).job!;
      expect(k.outputsDeleted).toBe(false);
      expect(k.outputs).toHaveLength(1);
    }
    expect((await acme.getJob(day.jobId)).job!.outputsExpireTime).not.toBe("");
    expect((await acmeBatches.getBatch(dayBatch.batchId)).outputsDeleted).toBe(false);

    // Nothing more is due: the day-long owners wait, the next sweeps delete nothing.
    await new Promise((r) => setTimeout(r, 1500));
    const later = await (await fetch(monitorUrl)).text();
    expect(metricSum(later, "rebeca_retention_objects_deleted_total")).toBe(expected.length);
    expect(metricSum(later, "rebeca_retention_due_owners")).toBe(0);
    expect((await bucket()).size).toBe(after.size);
  }, 240_000);
});
