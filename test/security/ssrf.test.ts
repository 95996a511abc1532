import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createBatchClient,
  createJobClient,
  startStack,
  startWebhookReceiver,
  type BatchClient,
  type JobClient,
  type Stack,
  type WebhookReceiver,
} from "@rebeca/devstack";
import { fieldViolations, grpcError } from "../support/grpc-errors.js";
import { modelUserIds } from "../support/world.js";

/** Addresses a callback must never reach, in the spellings attackers use to dodge naive filters. */
const BLOCKED = [
  "http://127.0.0.1/hook",
  "http://2130706433/hook",
  "http://0x7f.1/hook",
  "http://0177.0.0.01/hook",
  "http://127.1/hook",
  "http://[::1]/hook",
  "http://[::ffff:127.0.0.1]/hook",
  "http://[::ffff:7f00:1]/hook",
  "http://[64:ff9b::7f00:1]/hook",
  "http://[2002:7f00:1::]/hook",
  "http://0/hook",
  "http://169.254.169.254/latest/meta-data/",
  "http://[fd00:ec2::254]/latest/meta-data/",
  "http://[fe80::1]/hook",
  "http://10.1.2.3/hook",
  "http://172.31.255.255/hook",
  "http://192.168.0.10/hook",
  "http://100.64.0.1/hook",
  "http://[fc00::1]/hook",
  "https://user:pw@example.com/hook",
];

/*
 * SSRF, end to end. The gateway allowlists the *name* `localhost` (as if its DNS answered a public
 * address at submission); the notifier allowlists nothing. A job whose callback names localhost is
 * accepted, and its delivery — where the name now resolves to loopback, i.e. a rebinding — must be
 * refused at connect time: the receiver on 127.0.0.1 gets nothing and the message is dead-lettered.
 */
describe("SSRF: callback URLs refused at submission and again at delivery", () => {
  const ADMIN_TOKEN = randomBytes(24).toString("hex");
  let stack: Stack;
  let jobs: JobClient;
  let batches: BatchClient;
  let receiver: WebhookReceiver;
  let redis: Redis;
  const users = modelUserIds();

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({
      services: ["gateway", "notifier"],
      env: { gateway: { CALLBACK_ALLOW_HOSTS: "localhost" }, notifier: { CALLBACK_ALLOW_HOSTS: "", ADMIN_TOKEN, CALLBACK_RETRY_SCALE: "0.0001" } },
    });
    jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    redis = new Redis(stack.redis.url);
  });
  afterAll(async () => {
    jobs?.close();
    batches?.close();
    redis?.disconnect();
    await stack?.stop();
    await receiver?.close();
  });

  const recordCount = async () => (await redis.keys(`${stack.prefix}:job:*`)).length + (await redis.keys(`${stack.prefix}:batch:*`)).length;

  it.each(BLOCKED)("refuses %s at CreateJob and CreateBatch, writing nothing", async (url) => {
    const before = await recordCount();
    const job = await grpcError(() => jobs.createJob({ requestId: `ssrf-${randomBytes(4).toString("hex")}`, userId: users[0]!, callbackUrl: url }));
    expect(job.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(job).map((v) => v.field)).toEqual(["callback_url"]);
    const batch = await grpcError(() =>
      batches.createBatch({ requestId: `ssrf-b-${randomBytes(4).toString("hex")}`, callbackUrl: url }, [{ offset: 0, userIds: [users[0]!], last: true }]),
    );
    expect(batch.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(batch).map((v) => v.field)).toEqual(["parameters.callback_url"]);
    expect(await recordCount()).toBe(before);
  });

  it("refuses at delivery a host that resolves to loopback by then (DNS rebinding): nothing is sent, the message is dead-lettered", async () => {
    const port = new URL(receiver.url).port;
    const { job } = await jobs.createJob({ requestId: "rebind-1", userId: users[0]!, callbackUrl: `http://localhost:${port}/hooks` });
    await jobs.cancelJob(job!.jobId);

    const admin = `http://127.0.0.1:${stack.services.notifier!.httpPort}/admin/dead-letters`;
    type Letters = { total: number; items: { task: { url: string }; reason: string; detail: string }[] };
    let letters: Letters = { total: 0, items: [] };
    const deadline = Date.now() + 30_000;
    while (letters.total === 0 && Date.now() < deadline) {
      letters = (await (await fetch(admin, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as Letters;
      if (letters.total === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(letters.total).toBe(1);
    expect(letters.items[0]).toMatchObject({ reason: "blocked_address", task: { url: `http://localhost:${port}/hooks` } });
    expect(letters.items[0]!.detail).toMatch(/loopback/);
    expect(receiver.received).toHaveLength(0);
  });
});
