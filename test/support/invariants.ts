import { GetObjectCommand, ListObjectsCommand, S3Client } from "@aws-sdk/client-s3";
import { expect } from "vitest";
import type { BatchClient, JobClient, Stack } from "@rebeca/devstack";
import type { UserResult } from "@rebeca/contracts";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { JobState } from "@rebeca/contracts/grpc";
import { untilBatchCompleted, untilJobDone } from "./wait.js";

/** An S3 client for the stack's s3rver (or any endpoint in front of it). */
export function s3Of(stack: Stack): S3Client {
  return new S3Client({
    endpoint: stack.s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

/**
 * Every object key under `prefix`. ListObjects (v1) with markers: s3rver answers InternalError to
 * any truncated ListObjectsV2 (its continuation-token cipher is unsupported by OpenSSL 3).
 */
export async function keysUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const page = await s3.send(new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, Marker: out.at(-1) }));
    out.push(...(page.Contents ?? []).map((c) => c.Key!));
    if (!page.IsTruncated) return out;
  }
}

/** What a scenario reports for docs/reliability.md. */
export interface Figures {
  accepted: number;
  completed: number;
  lost: number;
  duplicates: number;
}

/**
 * The batch invariants: it completes; every accepted position appears once in the manifest with
 * `numImages` images; the image objects under the batch are exactly users × images (a duplicate
 * object or a lost one shows up here).
 */
export async function checkBatch(stack: Stack, batches: BatchClient, batchId: string, ids: string[], numImages: number, timeoutMs = 300_000): Promise<Figures> {
  const s3 = s3Of(stack);
  try {
    return await checkBatchWith(s3, stack, batches, batchId, ids, numImages, timeoutMs);
  } catch (err) {
    if ((err as Error).name === "InternalError") console.log(stack.s3.process.lines.slice(-20).join("\n"));
    throw err;
  } finally {
    s3.destroy();
  }
}

async function checkBatchWith(
  s3: S3Client,
  stack: Stack,
  batches: BatchClient,
  batchId: string,
  ids: string[],
  numImages: number,
  timeoutMs: number,
): Promise<Figures> {
  const final = await untilBatchCompleted(batches, batchId, timeoutMs);
  expect(final.state, `batch ${batchId} state`).toBe(BatchState.BATCH_STATE_COMPLETED);
  expect(final.counts).toMatchObject({ total: ids.length, succeeded: ids.length, failed: 0, cancelled: 0 });
  const key = final.resultManifestUri.replace(`s3://${stack.s3.bucket}/`, "");
  const body = await (await s3.send(new GetObjectCommand({ Bucket: stack.s3.bucket, Key: key }))).Body!.transformToByteArray();
  const manifest = Buffer.from(body)
    .toString("utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as UserResult);
  expect(manifest.map((l) => l.position)).toEqual(ids.map((_, i) => i));
  expect(manifest.map((l) => l.user_id)).toEqual(ids);
  const withImages = manifest.filter((l) => l.images?.length === numImages).length;
  expect(withImages).toBe(ids.length);
  const tenant = key.split("/")[1]!;
  const images = (await keysUnder(s3, stack.s3.bucket, `tenants/${tenant}/batches/${batchId}/users/`)).filter((k) => k.endsWith(".png"));
  const duplicates = images.length - new Set(images).size + Math.max(0, images.length - ids.length * numImages);
  expect(images).toHaveLength(ids.length * numImages);
  return { accepted: ids.length, completed: withImages, lost: ids.length - withImages, duplicates };
}

/** One event per state, in order, for a job that succeeded (a redelivered stage never emits twice). */
export async function eventTypes(jobs: JobClient, jobId: string): Promise<string[]> {
  return new Promise<string[]>((resolve, reject) => {
    const types: string[] = [];
    const stream = jobs.watchEvents({ jobId, afterEventId: "0" });
    stream.on("data", (r: { event?: { type: string } }) => {
      types.push(r.event!.type);
      if (["job.succeeded", "job.failed", "job.cancelled"].includes(r.event!.type)) {
        stream.cancel();
        resolve(types);
      }
    });
    stream.on("error", (e: { code?: number }) => (e.code === 1 ? undefined : reject(e)));
  });
}

/**
 * The single-job invariants: each job succeeds once (one event per state), with `numImages`
 * outputs, and exactly that many image objects under its prefix.
 */
export async function checkJobs(stack: Stack, jobs: JobClient, tenant: string, jobIds: string[], numImages: number, timeoutMs = 180_000): Promise<Figures> {
  const s3 = s3Of(stack);
  let completed = 0;
  let duplicates = 0;
  for (const jobId of jobIds) {
    const job = await untilJobDone(jobs, jobId, timeoutMs);
    expect(job.state, `job ${jobId}`).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(job.outputs).toHaveLength(numImages);
    expect(await eventTypes(jobs, jobId)).toEqual(["job.queued", "job.sampling", "job.decoding", "job.succeeded"]);
    const images = (await keysUnder(s3, stack.s3.bucket, `tenants/${tenant}/jobs/${jobId}/images/`)).filter((k) => k.endsWith(".png"));
    duplicates += Math.max(0, images.length - numImages);
    expect(images).toHaveLength(numImages);
    completed++;
  }
  s3.destroy();
  return { accepted: jobIds.length, completed, lost: jobIds.length - completed, duplicates };
}

/** Prints a scenario's figures in one greppable line (docs/reliability.md quotes them). */
export function report(scenario: string, figures: Record<string, unknown>): void {
  console.log(`[faults] ${scenario}: ${JSON.stringify(figures)}`);
}
