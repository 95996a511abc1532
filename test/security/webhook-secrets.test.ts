import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createJobClient,
  jsonLine,
  REPO_ROOT,
  startProcess,
  startStack,
  startWebhookReceiver,
  type JobClient,
  type RunningService,
  type Stack,
  type WebhookReceiver,
} from "@rebeca/devstack";
import { grpcError } from "../support/grpc-errors.js";
import { modelUserIds } from "../support/world.js";

const secret = () => `whsec_${randomBytes(32).toString("base64")}`;

/*
 * Webhook secret rotation without downtime, on real notifier processes. Secrets are read at start,
 * so rotation is a rolling restart: (1) notifiers with [old]; (2) replace them one by one with
 * [new, old] — every callback carries both signatures, receivers switch to the new secret at their
 * own pace; (3) replace them with [new]. No callback may be lost or fail verification with the
 * secret its receiver holds at that moment. Then: no secret ever appears in any service's output.
 */
describe("webhook secrets: rotation by rolling restart, and secrets never logged", () => {
  const OLD = secret();
  const NEW = secret();
  const ADMIN_TOKEN = randomBytes(24).toString("hex");
  let stack: Stack;
  let jobs: JobClient;
  let receiver: WebhookReceiver;
  const users = modelUserIds();
  const outputs: RunningService[] = [];
  /** Secret-looking values sent during the run (wrong keys) that must not be echoed either. */
  const secretsSeen: string[] = [];
  const secretsEnv = (keys: string[]) => JSON.stringify({ acme: keys, globex: [secret()] });

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({
      services: ["gateway"],
      env: { "*": { LOG_LEVEL: "debug" }, notifier: { ADMIN_TOKEN, CALLBACK_RETRY_SCALE: "0.0001" } },
    });
    outputs.push(stack.services.gateway!);
    jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
  });
  afterAll(async () => {
    jobs?.close();
    await Promise.all(outputs.map((s) => s.process.stop()));
    await stack?.stop();
    await receiver?.close();
  });

  const startNotifier = async (keys: string[]) => {
    const svc = await stack.start("notifier", { WEBHOOK_SECRETS: secretsEnv(keys) });
    outputs.push(svc);
    return svc;
  };

  let n = 0;
  /** A job whose cancellation produces one callback; returns the job id. */
  async function callback(): Promise<string> {
    const { job } = await jobs.createJob({ requestId: `rot-${n++}`, userId: users[0]!, callbackUrl: receiver.url });
    await jobs.cancelJob(job!.jobId);
    return job!.jobId;
  }
  const deliveryOf = async (jobId: string) => {
    await receiver.until((all) => all.some((r) => r.body.includes(jobId)), 30_000);
    return receiver.received.find((r) => r.body.includes(jobId))!;
  };
  const verifies = (key: string, d: { body: string; headers: Record<string, unknown> }) => {
    try {
      new Webhook(key).verify(d.body, d.headers as Record<string, string>);
      return true;
    } catch {
      return false;
    }
  };

  it("rotates with no lost or unverifiable callback: [old] → [new, old] (both signatures) → [new]", async () => {
    const a1 = await startNotifier([OLD]);
    const a2 = await startNotifier([OLD]);
    const phase1 = [await callback(), await callback()];
    for (const id of phase1) {
      const d = await deliveryOf(id);
      expect(verifies(OLD, d)).toBe(true);
      expect(String(d.headers["webhook-signature"]).split(" ")).toHaveLength(1);
    }

    // Rolling restart to [new, old], one replica at a time, with callbacks produced throughout.
    const during: string[] = [];
    const b1 = await startNotifier([NEW, OLD]);
    during.push(await callback());
    await a1.process.stop();
    during.push(await callback());
    const b2 = await startNotifier([NEW, OLD]);
    during.push(await callback());
    await a2.process.stop();
    const phase2 = [await callback(), await callback()];
    for (const id of [...during, ...phase2]) expect(verifies(OLD, await deliveryOf(id)), `callback for ${id} verifies with the old secret`).toBe(true);
    for (const id of phase2) {
      const d = await deliveryOf(id);
      const signatures = String(d.headers["webhook-signature"]).split(" ");
      expect(signatures).toHaveLength(2);
      expect(signatures.every((s) => s.startsWith("v1,"))).toBe(true);
      // Each receiver verifies with whichever single secret it holds.
      expect(verifies(NEW, d)).toBe(true);
      expect(verifies(OLD, d)).toBe(true);
      expect(verifies(secret(), d)).toBe(false);
    }

    // Receivers have moved to the new secret: roll to [new].
    const c1 = await startNotifier([NEW]);
    const rolling = [await callback()];
    await b1.process.stop();
    rolling.push(await callback());
    const c2 = await startNotifier([NEW]);
    await b2.process.stop();
    for (const id of rolling) expect(verifies(NEW, await deliveryOf(id))).toBe(true);
    const last = await callback();
    const d = await deliveryOf(last);
    expect(verifies(NEW, d)).toBe(true);
    expect(verifies(OLD, d)).toBe(false);
    expect(String(d.headers["webhook-signature"]).split(" ")).toHaveLength(1);

    // Nothing lost across three generations of notifiers: every callback arrived (deduped on webhook-id).
    const ids = [...phase1, ...during, ...phase2, ...rolling, last];
    for (const id of ids) await deliveryOf(id);
    const webhookIds = new Set(receiver.received.map((r) => r.headers["webhook-id"]));
    expect(webhookIds.size).toBe(ids.length);
    await Promise.all([c1.process.stop(), c2.process.stop()]);
  });

  it("a wrong API key is refused without being echoed", async () => {
    const probe = `rk_acme_${randomBytes(18).toString("base64url")}`;
    const client = createJobClient(stack.grpcAddress, probe);
    const err = await grpcError(() => client.listJobs({}));
    client.close();
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).not.toContain(probe);
    secretsSeen.push(probe);
  });

  it("configuration errors name the variable, never its value", async () => {
    const weak = `whsec_${randomBytes(8).toString("base64")}`;
    const shortToken = randomBytes(7).toString("hex");
    const p = startProcess("notifier-bad-config", process.execPath, [`${REPO_ROOT}services/notifier/dist/main.js`], {
      ...stack.envFor("notifier"),
      WEBHOOK_SECRETS: JSON.stringify({ acme: [weak] }),
      ADMIN_TOKEN: shortToken,
    });
    expect(await p.exited).not.toBe(0);
    const text = p.lines.join("\n");
    expect(text).toMatch(/WEBHOOK_SECRETS/);
    expect(text).toMatch(/ADMIN_TOKEN/);
    expect(text).not.toContain(weak);
    expect(text).not.toContain(weak.slice("whsec_".length));
    expect(text).not.toContain(shortToken);
  });

  it("no API key, webhook secret or admin token appears in any service's output", () => {
    const forbidden = [
      ...Object.values(stack.tenants).flatMap((t) => [t.apiKey, t.webhookSecret, t.webhookSecret.slice("whsec_".length)]),
      OLD,
      OLD.slice("whsec_".length),
      NEW,
      NEW.slice("whsec_".length),
      ADMIN_TOKEN,
      ...secretsSeen,
    ];
    const lines = outputs.flatMap((s) => s.process.lines.map((line) => ({ service: s.name, line })));
    // The run did log (debug level, deliveries included), so an empty capture cannot pass vacuously.
    expect(lines.filter((l) => jsonLine(l.line)?.msg === "callback delivered").length).toBeGreaterThanOrEqual(8);
    const leaks = lines.filter(({ line }) => forbidden.some((s) => line.includes(s)));
    expect(leaks).toEqual([]);
  });
});
