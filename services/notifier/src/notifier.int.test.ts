/**
 * Integration: a real redis-server on a free port, a real HTTP receiver on 127.0.0.1, the notifier
 * (dispatcher + BullMQ delivery worker + ops server with admin routes) in-process. Retry schedule
 * scaled by 1e-5 (5 s → 0.05 ms, 24 h → 0.86 s) so exhaustion takes ~3 s.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { redisKeys, type JobRecord } from "@rebeca/contracts";
import { createLogger, createMetricsRegistry, startOpsServer, type OpsServer } from "@rebeca/platform";
import { Redis } from "ioredis";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listDeliveries } from "./deliveries.js";
import type { DeliveryEvent } from "./delivery.js";
import { createNotifier, type Notifier } from "./notifier.js";
import { messageIdOf } from "./payload.js";
import { parseWebhookSecrets } from "./secrets.js";

const secretNew = `whsec_${randomBytes(32).toString("base64")}`;
const secretOld = `whsec_${randomBytes(32).toString("base64")}`;
const secretB = `whsec_${randomBytes(24).toString("base64")}`;
const ADMIN_TOKEN = randomBytes(24).toString("hex");
const prefix = `{nt${randomBytes(4).toString("hex")}}`;
const keys = redisKeys(prefix);

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}
type Reply = { status: number; headers?: Record<string, string> };

let redisProc: ChildProcess;
let redisDir: string;
let redis: Redis;
let blocking: Redis;
let workerConn: Redis;
let receiver: Server;
let receiverUrl: string;
let closedPort: number;
let notifier: Notifier;
let ops: OpsServer;
const received: Received[] = [];
const attempts: DeliveryEvent[] = [];
const bus = new EventEmitter();
/** Scripted replies per path: consumed in order, the last one repeats. */
const script = new Map<string, Reply[]>();

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves with `check()`'s first truthy value, re-checking on every receiver request and attempt. */
function waitUntil<T>(check: () => T | undefined | null | false, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const tryIt = () => {
      const v = check();
      if (v) {
        cleanup();
        resolve(v);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`condition not met within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      bus.off("change", tryIt);
    };
    bus.on("change", tryIt);
    tryIt();
  });
}

function jobRecord(tenant: string, jobId: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    userId: "u1",
    numImages: 1,
    guidance: 3,
    steps: 20,
    sampler: "ddim",
    seed: 7,
    modelVersion: "v1",
    priority: 0,
    labels: { campaign: "spring" },
    callbackUrl: "",
    callbackEvents: [],
    unknownUser: "reject",
    jobId,
    tenant,
    requestId: `req-${jobId}`,
    batchId: "",
    state: "succeeded",
    createTime: "2025-01-01T00:00:00.000Z",
    updateTime: "2025-01-01T00:00:05.000Z",
    startTime: "2025-01-01T00:00:01.000Z",
    endTime: "2025-01-01T00:00:05.000Z",
    error: null,
    outputs: [
      {
        index: 0,
        uri: `s3://bucket/tenants/${tenant}/jobs/${jobId}/images/0.png`,
        width: 64,
        height: 64,
        sha256: "a".repeat(64),
        bytes: 1234,
        contentType: "image/png",
        embeddingUri: `s3://bucket/tenants/${tenant}/jobs/${jobId}/embeddings.f32`,
        seed: 7,
      },
    ],
    populationPrior: false,
    ...over,
  };
}

let seq = 0;
/** Writes an outbox entry the way the job store does; returns its message id. */
async function emit(url: string, tenant = "tenantA"): Promise<string> {
  const jobId = `job_${++seq}`;
  const job = jobRecord(tenant, jobId, { callbackUrl: url });
  const eventId = `${Date.now()}-${seq}`;
  await redis.xadd(
    keys.outbox(),
    eventId,
    "tenant",
    tenant,
    "eventId",
    eventId,
    "url",
    url,
    "type",
    "job.succeeded",
    "time",
    job.updateTime,
    "job",
    JSON.stringify(job),
  );
  return messageIdOf(tenant, eventId);
}

const attemptsOf = (messageId: string) => attempts.filter((a) => a.task.messageId === messageId).map((a) => a.attempt);
const requestsTo = (path: string) => received.filter((r) => r.path === path);
const finalOutcome = (messageId: string) => attemptsOf(messageId).find((a) => a.outcome !== "retry")?.outcome;

beforeAll(async () => {
  redisDir = mkdtempSync(join(tmpdir(), "notifier-redis-"));
  const port = await freePort();
  redisProc = spawn("/usr/bin/redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", redisDir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    redisProc.once("exit", (code) => reject(new Error(`redis-server exited with ${code}`)));
    redisProc.stdout!.on("data", (d: Buffer) => d.toString().includes("Ready to accept connections") && resolve());
  });
  const url = `redis://127.0.0.1:${port}`;
  redis = new Redis(url, { maxRetriesPerRequest: null });
  blocking = new Redis(url, { maxRetriesPerRequest: null });
  workerConn = new Redis(url, { maxRetriesPerRequest: null });

  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const replies = script.get(path) ?? [{ status: 200 }];
      const reply = replies.length > 1 ? replies.shift()! : replies[0]!;
      res.writeHead(reply.status, reply.headers);
      res.end("ok");
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() });
      bus.emit("change");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  closedPort = await freePort();

  const registry = createMetricsRegistry("notifier-test");
  notifier = createNotifier({
    config: {
      QUEUE_PREFIX: prefix,
      CALLBACK_CONCURRENCY: 4,
      CALLBACK_TIMEOUT_MS: 5000,
      CALLBACK_RETRY_SCALE: 0.00001,
      CALLBACK_RETRY_JITTER: 0.1,
      CALLBACK_RETRY_AFTER_MAX_S: 60,
      CALLBACK_ALLOW_HOSTS: ["127.0.0.1"],
      CALLBACK_DELIVERIES_TTL_S: 3600,
      ADMIN_TOKEN,
      OUTBOX_GROUP: "notifier",
      OUTBOX_CONSUMER: "test-consumer",
      OUTBOX_BATCH: 50,
      OUTBOX_BLOCK_MS: 100,
      OUTBOX_CLAIM_IDLE_MS: 300,
    },
    secrets: parseWebhookSecrets(JSON.stringify({ tenantA: [secretNew, secretOld], tenantB: secretB })),
    redis,
    blockingRedis: blocking,
    workerConnection: workerConn,
    registry,
    log: createLogger("notifier-test", "silent"),
  });
  notifier.events.on("attempt", (e) => {
    attempts.push(e);
    bus.emit("change");
  });
  ops = await startOpsServer({ host: "127.0.0.1", port: 0, registry, health: { ready: true }, extra: notifier.adminRoutes });
  await notifier.start();
});

afterAll(async () => {
  await notifier?.stopDispatcher();
  await notifier?.stopWorker();
  await ops?.close();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  for (const c of [redis, blocking, workerConn]) c?.disconnect();
  if (redisProc && redisProc.exitCode === null) {
    const exited = new Promise((r) => redisProc.once("exit", r));
    redisProc.kill("SIGTERM");
    await exited;
  }
  rmSync(redisDir, { recursive: true, force: true });
});

describe("notifier against real Redis and a real receiver", () => {
  it("turns an outbox entry into a signed callback that verifies (old and new secret)", async () => {
    const id = await emit(`${receiverUrl}/ok`);
    const req = await waitUntil(() => received.find((r) => r.headers["webhook-id"] === id));
    expect(req.headers["content-type"]).toBe("application/json");
    const payload = new Webhook(secretNew).verify(req.body, req.headers as Record<string, string>) as {
      type: string;
      timestamp: string;
      data: Record<string, unknown>;
    };
    expect(() => new Webhook(secretOld).verify(req.body, req.headers as Record<string, string>)).not.toThrow();
    expect(payload.type).toBe("job.succeeded");
    expect(payload.timestamp).toBe("2025-01-01T00:00:05.000Z");
    expect(payload.data).toMatchObject({
      job_id: expect.stringMatching(/^job_/),
      request_id: expect.any(String),
      user_id: "u1",
      state: "succeeded",
      labels: { campaign: "spring" },
      error: null,
    });
    expect((payload.data.outputs as object[])[0]).toEqual({
      uri: expect.stringMatching(/^s3:\/\//),
      width: 64,
      height: 64,
      sha256: "a".repeat(64),
      bytes: 1234,
      embedding_uri: expect.stringMatching(/embeddings\.f32$/),
    });
    expect(Buffer.byteLength(req.body)).toBeLessThan(20_000);
    await waitUntil(() => finalOutcome(id) === "delivered");
    const recorded = await listDeliveries(redis, prefix, id);
    expect(recorded).toEqual([expect.objectContaining({ attempt: 1, status: 200, outcome: "delivered", nextAttemptTime: null })]);
    // Acknowledged and deleted only after the enqueue.
    expect(await redis.xlen(keys.outbox())).toBe(0);
  });

  it("retries a 500 with the same webhook-id and records each attempt", async () => {
    script.set("/flaky", [{ status: 500 }, { status: 200 }]);
    const id = await emit(`${receiverUrl}/flaky`);
    await waitUntil(() => finalOutcome(id) === "delivered");
    const reqs = requestsTo("/flaky");
    expect(reqs.map((r) => r.headers["webhook-id"])).toEqual([id, id]);
    for (const r of reqs) expect(() => new Webhook(secretNew).verify(r.body, r.headers as Record<string, string>)).not.toThrow();
    const recorded = await listDeliveries(redis, prefix, id);
    expect(recorded.map((a) => [a.attempt, a.status, a.outcome])).toEqual([
      [1, 500, "retry"],
      [2, 200, "delivered"],
    ]);
    expect(recorded[0]!.nextAttemptTime).not.toBeNull();
  });

  it("honours Retry-After on 429", async () => {
    script.set("/limited", [{ status: 429, headers: { "retry-after": "1" } }, { status: 200 }]);
    const id = await emit(`${receiverUrl}/limited`);
    await waitUntil(() => finalOutcome(id) === "delivered");
    const [first, second] = requestsTo("/limited");
    // The scaled schedule alone would retry after ~0.05 ms.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(990);
  });

  it("disables an endpoint on 410; later messages to it are dead-lettered unsent", async () => {
    script.set("/gone", [{ status: 410 }]);
    const first = await emit(`${receiverUrl}/gone`);
    await waitUntil(() => finalOutcome(first) === "gone");
    expect(await notifier.endpoints.get("tenantA", `${receiverUrl}/gone`)).toMatchObject({ disabled: true });
    const second = await emit(`${receiverUrl}/gone`);
    await waitUntil(() => finalOutcome(second) === "endpoint_disabled");
    expect(requestsTo("/gone")).toHaveLength(1);
    expect(await notifier.deadLetters.get(first)).toMatchObject({ reason: "gone" });
    expect(await notifier.deadLetters.get(second)).toMatchObject({ reason: "endpoint_disabled" });
  });

  it("a dead endpoint (connection refused) does not hold up a healthy one; it ends in dead letters after 10 attempts", async () => {
    const dead = await Promise.all(Array.from({ length: 8 }, () => emit(`http://127.0.0.1:${closedPort}/hook`)));
    const healthy = await emit(`${receiverUrl}/healthy`, "tenantB");
    await waitUntil(() => finalOutcome(healthy) === "delivered");
    const req = requestsTo("/healthy")[0]!;
    expect(() => new Webhook(secretB).verify(req.body, req.headers as Record<string, string>)).not.toThrow();
    // Delivered while every dead message was still being retried.
    expect(dead.every((id) => finalOutcome(id) === undefined)).toBe(true);
    await waitUntil(() => dead.every((id) => finalOutcome(id) === "exhausted"), 30_000);
    const recorded = await listDeliveries(redis, prefix, dead[0]!);
    expect(recorded).toHaveLength(10);
    expect(recorded[0]!.error).toMatch(/ECONNREFUSED/);
  });

  it("exhausted → dead letter → admin replay delivers with the same webhook-id", async () => {
    script.set("/later", [{ status: 503 }]);
    const id = await emit(`${receiverUrl}/later`);
    await waitUntil(() => finalOutcome(id) === "exhausted", 30_000);
    expect(requestsTo("/later")).toHaveLength(10);

    const admin = `http://127.0.0.1:${ops.port}/admin`;
    expect((await fetch(`${admin}/dead-letters`)).status).toBe(401);
    expect((await fetch(`${admin}/dead-letters`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const list = (await (await fetch(`${admin}/dead-letters?limit=1000`, { headers: auth })).json()) as {
      total: number;
      items: { task: { messageId: string }; reason: string }[];
    };
    expect(list.items.find((l) => l.task.messageId === id)).toMatchObject({ reason: "exhausted" });
    const history = (await (await fetch(`${admin}/deliveries/${encodeURIComponent(id)}`, { headers: auth })).json()) as { attempts: unknown[] };
    expect(history.attempts).toHaveLength(10);

    script.set("/later", [{ status: 200 }]);
    const replay = await fetch(`${admin}/dead-letters/${encodeURIComponent(id)}/replay`, { method: "POST", headers: auth });
    expect(replay.status).toBe(202);
    const req = await waitUntil(() => requestsTo("/later")[10]);
    expect(req.headers["webhook-id"]).toBe(id);
    expect(() => new Webhook(secretNew).verify(req.body, req.headers as Record<string, string>)).not.toThrow();
    await waitUntil(() => attemptsOf(id).some((a) => a.outcome === "delivered"));
    expect(await notifier.deadLetters.get(id)).toBeNull();
    expect((await fetch(`${admin}/dead-letters/nope/replay`, { method: "POST", headers: auth })).status).toBe(404);
  });

  it("claims outbox entries a crashed dispatcher left pending", async () => {
    const url = `${receiverUrl}/claimed`;
    const job = jobRecord("tenantA", "job_claimed", { callbackUrl: url });
    const eventId = `${Date.now()}-999`;
    // XADD and a read by another consumer in one transaction: Redis serves the live dispatcher's
    // blocked read only after EXEC, so the "crashed" consumer owns the entry and never acks it.
    const [, read] = (await redis
      .multi()
      .xadd(
        keys.outbox(),
        eventId,
        "tenant",
        "tenantA",
        "eventId",
        eventId,
        "url",
        url,
        "type",
        "job.succeeded",
        "time",
        job.updateTime,
        "job",
        JSON.stringify(job),
      )
      .xreadgroup("GROUP", "notifier", "crashed", "COUNT", 10, "STREAMS", keys.outbox(), ">")
      .exec())!;
    expect((read![1] as [string, unknown[]][])[0]![1]).toHaveLength(1);
    const start = Date.now();
    const id = messageIdOf("tenantA", eventId);
    await waitUntil(() => finalOutcome(id) === "delivered");
    expect(Date.now() - start).toBeGreaterThanOrEqual(290); // OUTBOX_CLAIM_IDLE_MS
    expect(requestsTo("/claimed").map((r) => r.headers["webhook-id"])).toEqual([id]);
    expect(await redis.xlen(keys.outbox())).toBe(0);
    expect(await redis.xpending(keys.outbox(), "notifier")).toEqual([0, null, null, null]);
  });

  it("refuses a private address at delivery time without connecting", async () => {
    const id = await emit("http://10.255.255.1/hook");
    await waitUntil(() => finalOutcome(id) === "blocked_address");
    expect(await notifier.deadLetters.get(id)).toMatchObject({ reason: "blocked_address" });
  });

  it("exports Prometheus metrics", async () => {
    const text = await (await fetch(`http://127.0.0.1:${ops.port}/metrics`)).text();
    expect(text).toMatch(/rebeca_callback_deliveries_total\{outcome="delivered",service="notifier-test"\} \d+/);
    expect(text).toMatch(/rebeca_callback_delivery_duration_seconds_bucket/);
    expect(text).toMatch(/rebeca_callback_dead_letters\{service="notifier-test"\} \d+/);
    expect(text).toMatch(/rebeca_callback_outbox_lag_entries\{service="notifier-test"\} 0/);
  });
});
