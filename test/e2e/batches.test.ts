import { createHash } from "node:crypto";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { status } from "@grpc/grpc-js";
import { PNG } from "pngjs";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chunksOf,
  createBatchClient,
  createJobClient,
  startStack,
  startWebhookReceiver,
  type BatchClient,
  type JobClient,
  type Stack,
  type WebhookReceiver,
} from "@rebeca/devstack";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import type { UserResult } from "@rebeca/contracts";
import { collect } from "../support/events.js";
import { grpcError } from "../support/grpc-errors.js";
import { modelUserIds } from "../support/world.js";

const SHARD = 8;

describe("batches: streaming intake, shards, result manifest, progress, cancel", () => {
  let stack: Stack;
  let acme: BatchClient;
  let acmeJobs: JobClient;
  let globex: BatchClient;
  let s3: S3Client;
  let receiver: WebhookReceiver;
  const users = modelUserIds();

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({ env: { gateway: { SHARD_SIZE: String(SHARD) } } });
    acme = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    acmeJobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    globex = createBatchClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
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
    acmeJobs?.close();
    globex?.close();
    await stack?.stop();
    await receiver?.close();
  });

  async function object(uri: string): Promise<Buffer> {
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }

  async function finished(batchId: string) {
    const watch = collect(acmeJobs.watchEvents({ batchId, afterEventId: "0", types: ["batch.completed", "batch.cancelled"] }));
    try {
      await watch.until((es) => es.length > 0);
      // A cancelled batch's manifest lands after its shards are accounted for.
      for (;;) {
        const b = await acme.getBatch(batchId);
        if (b.endTime) return b;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      watch.close();
    }
  }

  async function manifest(uri: string): Promise<UserResult[]> {
    return (await object(uri))
      .toString("utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as UserResult);
  }

  it("runs a streamed batch in shards and lists every user in the result manifest, unknown users as errors", async () => {
    const ids = [...users.slice(0, 30), "nobody-1", ...users.slice(30, 40), "nobody-2"];
    const created = await acme.createBatch({ requestId: "b-1", numImages: 2, seed: 3, labels: { run: "b1" }, callbackUrl: receiver.url }, chunksOf(ids, 7));
    expect(created.state).toBe(BatchState.BATCH_STATE_RUNNING);
    expect(created.counts!.total).toBe(ids.length);
    expect(created.shardsTotal).toBe(Math.ceil(ids.length / SHARD));

    const batch = await finished(created.batchId);
    expect(batch.state).toBe(BatchState.BATCH_STATE_COMPLETED);
    expect(batch.counts).toMatchObject({ total: 42, succeeded: 40, failed: 2, cancelled: 0, queued: 0 });
    expect(batch.shardsDone).toBe(batch.shardsTotal);

    const lines = await manifest(batch.resultManifestUri);
    expect(lines.map((l) => l.position)).toEqual(ids.map((_, i) => i));
    expect(lines.map((l) => l.user_id)).toEqual(ids);
    expect(lines.filter((l) => l.error).map((l) => [l.user_id, l.error!.code])).toEqual([
      ["nobody-1", "UNKNOWN_USER"],
      ["nobody-2", "UNKNOWN_USER"],
    ]);
    const first = lines[0]!.images!;
    expect(first).toHaveLength(2);
    const png = await object(first[0]!.uri);
    expect(createHash("sha256").update(png).digest("hex")).toBe(first[0]!.sha256);
    expect(PNG.sync.read(png).width).toBe(28);
    expect(first[0]!.uri).toContain(`/tenants/acme/batches/${batch.batchId}/users/0/0.png`);

    // One batch.completed callback, signed, thin, with the manifest's location.
    await receiver.until((all) => all.some((r) => r.body.includes(batch.batchId)));
    const hooks = receiver.received.filter((r) => r.body.includes(batch.batchId));
    expect(hooks).toHaveLength(1);
    const body = new Webhook(stack.tenants.acme!.webhookSecret).verify(hooks[0]!.body, {
      "webhook-id": String(hooks[0]!.headers["webhook-id"]),
      "webhook-timestamp": String(hooks[0]!.headers["webhook-timestamp"]),
      "webhook-signature": String(hooks[0]!.headers["webhook-signature"]),
    }) as { type: string; data: { counts: { succeeded: number }; result_manifest_uri: string } };
    expect(body.type).toBe("batch.completed");
    expect(body.data.counts.succeeded).toBe(40);
    expect(body.data.result_manifest_uri).toBe(batch.resultManifestUri);
  });

  it("sends one callback per user only when the batch asks for them, each in the caller's trace", async () => {
    const ids = [...users.slice(0, 4), "nobody-3"];
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const created = await acme.createBatch(
      { requestId: "b-users", callbackUrl: receiver.url, callbackEvents: ["user.succeeded", "user.failed", "batch.completed"] },
      chunksOf(ids, 5),
      { traceparent },
    );
    await receiver.until((all) => all.filter((r) => r.body.includes(created.batchId)).length >= 6);
    const hooks = receiver.received.filter((r) => r.body.includes(created.batchId));
    const wh = new Webhook(stack.tenants.acme!.webhookSecret);
    const bodies = hooks.map(
      (h) =>
        wh.verify(h.body, {
          "webhook-id": String(h.headers["webhook-id"]),
          "webhook-timestamp": String(h.headers["webhook-timestamp"]),
          "webhook-signature": String(h.headers["webhook-signature"]),
        }) as {
          type: string;
          data: { user_id?: string; images?: unknown[]; error?: { code: string } };
        },
    );
    expect(
      bodies
        .filter((b) => b.type === "user.succeeded")
        .map((b) => b.data.user_id)
        .sort(),
    ).toEqual(users.slice(0, 4).sort());
    expect(bodies.filter((b) => b.type === "user.failed").map((b) => [b.data.user_id, b.data.error?.code])).toEqual([["nobody-3", "UNKNOWN_USER"]]);
    expect(bodies.filter((b) => b.type === "batch.completed")).toHaveLength(1);
    expect(new Set(hooks.map((h) => h.headers["webhook-id"])).size).toBe(hooks.length);
    // W3C trace context: every callback continues the caller's trace with a span of its own.
    for (const h of hooks) expect(String(h.headers.traceparent)).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-(?!b7ad6b7169203331)[0-9a-f]{16}-01$/);
  });

  it("reports progress on WatchEvents, one event per finished shard", async () => {
    const ids = users.slice(0, 24);
    const created = await acme.createBatch({ requestId: "b-progress", labels: { run: "progress" } }, chunksOf(ids, 10));
    const watch = collect(acmeJobs.watchEvents({ batchId: created.batchId, afterEventId: "0" }));
    const events = await watch.until((es) => es.some((e) => e.type === "batch.completed"));
    watch.close();
    const progress = events.filter((e) => e.type === "batch.progress");
    expect(progress).toHaveLength(3);
    expect(progress.map((e) => e.batch!.shardsDone)).toEqual([1, 2, 3]);
    expect(events[events.length - 1]!.batch!.succeeded).toBe(24);
  });

  it("a client that reconnects and resends under the same request_id creates no duplicates", async () => {
    const ids = users.slice(0, 50);
    // The first stream breaks after 3 chunks of 9 (27 users sent; shards of 8 stored up to 24),
    // once the gateway has stored what it received.
    const receivedUsers = async () => Number((await acme.listBatches(100)).batches.find((b) => b.requestId === "b-resume")?.receivedUsers ?? 0);
    const stored = async () => {
      while ((await receivedUsers()) < 24) await new Promise((r) => setTimeout(r, 20));
    };
    await expect(acme.createBatch({ requestId: "b-resume", seed: 9 }, chunksOf(ids, 9), { abortAfter: 3, beforeAbort: stored })).rejects.toMatchObject({
      code: status.CANCELLED,
    });
    expect(await receivedUsers()).toBe(24);
    // Resend from an earlier offset than stored: the overlap is skipped.
    const resumed = await acme.createBatch({ requestId: "b-resume", seed: 9 }, chunksOf(ids, 9, 18));
    expect(resumed.counts!.total).toBe(50);
    const batch = await finished(resumed.batchId);
    const lines = await manifest(batch.resultManifestUri);
    expect(lines.map((l) => l.position)).toEqual(ids.map((_, i) => i));
    expect(lines.map((l) => l.user_id)).toEqual(ids);
    expect(batch.counts!.succeeded).toBe(50);
    // A repeat after completion returns the same batch and adds nothing.
    const again = await acme.createBatch({ requestId: "b-resume", seed: 9 }, chunksOf(ids, 9));
    expect(again.batchId).toBe(batch.batchId);
    expect((await acme.getBatch(batch.batchId)).counts!.succeeded).toBe(50);
  });

  it("CancelBatch stops pending shards and reports what completed", async () => {
    const ids = Array.from({ length: 400 }, (_, i) => users[i % users.length]!);
    const created = await acme.createBatch({ requestId: "b-cancel", sampler: 2 /* DDPM: slow */ }, chunksOf(ids, 100));
    const cancelled = await acme.cancelBatch(created.batchId);
    expect(cancelled.state).toBe(BatchState.BATCH_STATE_CANCELLED);
    const batch = await finished(created.batchId);
    expect(batch.state).toBe(BatchState.BATCH_STATE_CANCELLED);
    const c = batch.counts!;
    expect(c.succeeded + c.failed + c.cancelled).toBe(400);
    expect(c.cancelled).toBeGreaterThan(300);
    const lines = await manifest(batch.resultManifestUri).catch(() => [] as UserResult[]);
    expect(lines.filter((l) => l.images).length).toBe(c.succeeded);
  });

  it("creates a batch from a manifest under the tenant's prefix, and refuses another tenant's", async () => {
    const ids = users.slice(0, 12);
    await s3.send(new PutObjectCommand({ Bucket: stack.s3.bucket, Key: "tenants/acme/inputs/ids.txt", Body: ids.join("\n") + "\n" }));
    const created = await acme.createBatchFromManifest({ requestId: "b-manifest" }, `s3://${stack.s3.bucket}/tenants/acme/inputs/ids.txt`);
    expect(created.counts!.total).toBe(12);
    const batch = await finished(created.batchId);
    expect(batch.counts!.succeeded).toBe(12);
    const err = await grpcError(() => globex.createBatchFromManifest({ requestId: "steal" }, `s3://${stack.s3.bucket}/tenants/acme/inputs/ids.txt`));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
  });

  it("keeps batches per tenant and validates input", async () => {
    const created = await acme.createBatch({ requestId: "b-iso" }, chunksOf(users.slice(0, 3), 3));
    expect((await grpcError(() => globex.getBatch(created.batchId))).code).toBe(status.NOT_FOUND);
    expect((await grpcError(() => globex.cancelBatch(created.batchId))).code).toBe(status.NOT_FOUND);
    expect((await globex.listBatches(100)).batches.map((b) => b.batchId)).not.toContain(created.batchId);
    expect((await grpcError(() => acme.createBatch({ requestId: "" }, chunksOf(["u1"], 1)))).code).toBe(status.INVALID_ARGUMENT);
    expect((await grpcError(() => acme.createBatch({ requestId: "b-bad-id" }, chunksOf(["ok", "has space"], 2)))).code).toBe(status.INVALID_ARGUMENT);
    expect((await grpcError(() => acme.createBatch({ requestId: "b-gap" }, [{ offset: 5, userIds: ["u1"], last: true }]))).code).toBe(status.INVALID_ARGUMENT);
  });
});
