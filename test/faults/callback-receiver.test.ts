import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { createJobClient, freePort, startStack, startWebhookReceiver, type ReceivedWebhook, type Stack, type WebhookReceiver } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { modelUserIds } from "../support/world.js";
import { untilJobDone } from "../support/wait.js";
import { report } from "../support/invariants.js";

/*
 * Fault scenario: callback receivers that fail in every way a real one does, at system level
 * (gateway → workers → outbox → notifier → HTTP). The retry schedule (5 s … 24 h, 75.6 h in all)
 * is scaled by CALLBACK_RETRY_SCALE with no jitter, so the spec's hours become seconds and the
 * gaps between attempts can be checked against it:
 * - /flaky answers 500 to the first 4 attempts of each message, then 204;
 * - /throttle answers 429 with `Retry-After: 2` once per message, then 204;
 * - /gone answers 410: the endpoint is disabled, later messages are dead-lettered unsent;
 * - a receiver that is down (connection refused) for ~22 h of schedule time, then up;
 * - a receiver that is down for good: its deliveries exhaust the schedule, land in the
 *   dead-letter set, are listed through the admin API and replayed once it is up.
 * Meanwhile the jobs themselves complete at once: callbacks never hold a stage worker.
 * FAULTS_FULL=1 uses a 10× slower scale (exhaustion after ≈ 4.5 min instead of ≈ 27 s).
 */
const SCALE = process.env.FAULTS_FULL === "1" ? 1e-3 : 1e-4;
/** The Standard Webhooks schedule after the first attempt, ms. */
const SCHEDULE_MS = [5e3, 3e5, 1.8e6, 7.2e6, 1.8e7, 3.6e7, 5.04e7, 7.2e7, 8.64e7];
const ADMIN_TOKEN = randomBytes(24).toString("hex");
const PER_ENDPOINT = 3;

describe("faults: callback receivers down, failing, throttling and gone", () => {
  let stack: Stack;
  let flaky: WebhookReceiver;
  const late: WebhookReceiver[] = [];
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({
      env: { notifier: { CALLBACK_RETRY_SCALE: String(SCALE), CALLBACK_RETRY_JITTER: "0", ADMIN_TOKEN, CALLBACK_TIMEOUT_MS: "2000" } },
    });
  });
  afterAll(async () => {
    await Promise.all([flaky, ...late].filter(Boolean).map((r) => r.close()));
    await stack?.stop();
  });

  const admin = async (path: string, method = "GET") => {
    const res = await fetch(`http://127.0.0.1:${stack.services.notifier!.httpPort}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status, `${method} ${path}`).toBeLessThan(300);
    return (await res.json()) as Record<string, unknown>;
  };
  const idOf = (r: ReceivedWebhook) => String(r.headers["webhook-id"]);
  const jobOf = (r: ReceivedWebhook) => (JSON.parse(r.body) as { data: { job_id: string } }).data.job_id;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("workers are unaffected, deliveries follow the schedule, dead letters are listed and replayed", async () => {
    const seen = new Map<string, number>();
    flaky = await startWebhookReceiver(({ url, headers }) => {
      const id = String(headers["webhook-id"]);
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      if (url.startsWith("/flaky")) return { status: n <= 4 ? 500 : 204 };
      if (url.startsWith("/throttle")) return n === 1 ? { status: 429, headers: { "retry-after": "2" } } : { status: 204 };
      if (url.startsWith("/gone")) return { status: 410 };
      return { status: 404 };
    });
    const base = `http://127.0.0.1:${flaky.port}`;
    const downPort = await freePort();
    const deadPort = await freePort();
    const endpoints: Record<string, string> = {
      flaky: `${base}/flaky`,
      throttle: `${base}/throttle`,
      gone: `${base}/gone`,
      down: `http://127.0.0.1:${downPort}/hooks`,
      dead: `http://127.0.0.1:${deadPort}/hooks`,
    };

    const jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const t0 = Date.now();
    const jobIds: Record<string, string[]> = {};
    for (const [name, url] of Object.entries(endpoints)) {
      jobIds[name] = [];
      if (name === "gone") continue;
      for (let i = 0; i < PER_ENDPOINT; i++) {
        const res = await jobs.createJob({ requestId: `cb-${name}-${i}`, userId: users[i]!, callbackUrl: url, callbackEvents: ["job.succeeded"] });
        jobIds[name]!.push(res.job!.jobId);
      }
    }
    // /gone: the first message meets the 410; the next two come after it disabled the endpoint.
    const goneJob = async (i: number) =>
      jobIds.gone!.push(
        (await jobs.createJob({ requestId: `cb-gone-${i}`, userId: users[i]!, callbackUrl: endpoints.gone, callbackEvents: ["job.succeeded"] })).job!.jobId,
      );
    await goneJob(0);
    await flaky.until((r) => r.some((x) => x.url === "/gone"), 60_000);
    for (let wait = Date.now() + 30_000; Number((await admin("/admin/dead-letters")).total) < 1 && Date.now() < wait;) await sleep(50);
    for (let i = 1; i < PER_ENDPOINT; i++) await goneJob(i);
    const all = Object.values(jobIds).flat();

    // The stage workers finish every job while its callbacks are failing.
    for (const jobId of all) expect((await untilJobDone(jobs, jobId, 120_000)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    const jobsDoneMs = Date.now() - t0;

    // Down for ~22 h of schedule time (80,000 s × scale), then up on the same port.
    const downForMs = 80_000_000 * SCALE;
    await sleep(Math.max(0, t0 + downForMs - Date.now()));
    const down = await startWebhookReceiver(() => ({ status: 204 }), downPort);
    late.push(down);
    const downUpAt = Date.now();

    await flaky.until((r) => jobIds.flaky!.every((j) => r.some((x) => x.url === "/flaky" && x.status === 204 && jobOf(x) === j)), 60_000);
    await flaky.until((r) => jobIds.throttle!.every((j) => r.some((x) => x.url === "/throttle" && x.status === 204 && jobOf(x) === j)), 60_000);
    await down.until((r) => jobIds.down!.every((j) => r.some((x) => jobOf(x) === j)), 120_000);

    // 500s: five attempts per message, spaced by the schedule (no jitter; slack for timers).
    for (const jobId of jobIds.flaky!) {
      const times = flaky.received.filter((r) => r.url === "/flaky" && jobOf(r) === jobId).map((r) => r.receivedAt);
      expect(times).toHaveLength(5);
      for (let k = 1; k < times.length; k++) {
        const gap = times[k]! - times[k - 1]!;
        expect(gap).toBeGreaterThanOrEqual(SCHEDULE_MS[k - 1]! * SCALE - 5);
        expect(gap).toBeLessThan(SCHEDULE_MS[k - 1]! * SCALE + 2000);
      }
    }
    // 429 + Retry-After: 2 s, far above the scheduled 0.5 ms: the receiver's word wins.
    const throttleGaps = jobIds.throttle!.map((jobId) => {
      const times = flaky.received.filter((r) => r.url === "/throttle" && jobOf(r) === jobId).map((r) => r.receivedAt);
      expect(times).toHaveLength(2);
      return times[1]! - times[0]!;
    });
    for (const gap of throttleGaps) {
      expect(gap).toBeGreaterThanOrEqual(1990);
      expect(gap).toBeLessThan(2000 + 2000);
    }
    // Connection refused while down: delivered on the first attempt after it came up.
    const downDelivered = down.received.map((r) => r.receivedAt);
    expect(Math.min(...downDelivered)).toBeGreaterThanOrEqual(downUpAt);

    // The dead endpoint exhausts its schedule (10 attempts) and is dead-lettered.
    const exhaustBy = t0 + SCHEDULE_MS.reduce((a, b) => a + b, 0) * SCALE + 60_000;
    let letters: { task: { messageId: string; url: string }; reason: string; attempts: number }[] = [];
    for (;;) {
      letters = (await admin("/admin/dead-letters?limit=1000")).items as typeof letters;
      if (letters.filter((l) => l.reason === "exhausted").length >= PER_ENDPOINT || Date.now() > exhaustBy) break;
      await sleep(250);
    }
    const exhausted = letters.filter((l) => l.reason === "exhausted");
    expect(exhausted).toHaveLength(PER_ENDPOINT);
    expect(exhausted.every((l) => l.task.url === endpoints.dead && l.attempts === 10)).toBe(true);
    // ...and the jobs had long finished by then: a dead endpoint never blocked a worker.
    const deadAttempts = (await admin(`/admin/deliveries/${encodeURIComponent(exhausted[0]!.task.messageId)}`)).attempts as { time: string; outcome: string }[];
    expect(deadAttempts).toHaveLength(10);
    const deadTimes = deadAttempts.map((a) => Date.parse(a.time));
    expect(jobsDoneMs).toBeLessThan(deadTimes.at(-1)! - t0);
    for (let k = 1; k < deadTimes.length; k++) {
      const gap = deadTimes[k]! - deadTimes[k - 1]!;
      expect(gap, `gap before attempt ${k + 1}`).toBeGreaterThanOrEqual(SCHEDULE_MS[k - 1]! * SCALE - 5);
      expect(gap, `gap before attempt ${k + 1}`).toBeLessThan(SCHEDULE_MS[k - 1]! * SCALE + 2000);
    }

    // 410: one request reached /gone; it disabled the endpoint, the others were never sent.
    const gone = letters.filter((l) => l.task.url === endpoints.gone);
    expect(gone.map((l) => l.reason).sort()).toEqual([...Array<string>(PER_ENDPOINT - 1).fill("endpoint_disabled"), "gone"]);
    expect(flaky.received.filter((r) => r.url === "/gone")).toHaveLength(1);

    // Replay: the dead endpoint comes up; each replay is delivered once, under its webhook-id.
    const revived = await startWebhookReceiver(() => ({ status: 204 }), deadPort);
    late.push(revived);
    for (const l of exhausted) await admin(`/admin/dead-letters/${encodeURIComponent(l.task.messageId)}/replay`, "POST");
    await revived.until((r) => r.length >= PER_ENDPOINT, 60_000);
    expect(revived.received.map(idOf).sort()).toEqual(exhausted.map((l) => l.task.messageId).sort());
    const after = (await admin("/admin/dead-letters?limit=1000")).items as typeof letters;
    expect(after.filter((l) => l.task.url === endpoints.dead)).toHaveLength(0);

    // Invariants over everything received: each job's event has exactly one webhook-id (repeats
    // only under it), every signature verifies, and no job got a second delivered callback.
    const everything = [...flaky.received, ...down.received, ...revived.received];
    const idsPerJob = new Map<string, Set<string>>();
    for (const r of everything) {
      const jobId = jobOf(r);
      idsPerJob.set(jobId, (idsPerJob.get(jobId) ?? new Set()).add(idOf(r)));
      const { webhookSecret } = stack.tenants.acme!;
      const headers = {
        "webhook-id": idOf(r),
        "webhook-timestamp": String(r.headers["webhook-timestamp"]),
        "webhook-signature": String(r.headers["webhook-signature"]),
      };
      expect(() => new Webhook(webhookSecret).verify(r.body, headers)).not.toThrow();
    }
    for (const ids of idsPerJob.values()) expect(ids.size).toBe(1);
    const delivered = everything.filter((r) => r.status >= 200 && r.status < 300).map(jobOf);
    expect(new Set(delivered).size).toBe(delivered.length);
    // Every job whose endpoint works got its callback; /gone's jobs are dead letters instead.
    expect(new Set(delivered)).toEqual(new Set([...jobIds.flaky!, ...jobIds.throttle!, ...jobIds.down!, ...jobIds.dead!]));

    report("callback-receiver", {
      scale: SCALE,
      jobs: { accepted: all.length, completed: all.length, lost: 0, duplicates: 0 },
      jobsDoneMs,
      exhaustedAfterMs: deadTimes.at(-1)! - t0,
      throttleGapsMs: throttleGaps,
      downForMs: downUpAt - t0,
      deadLetters: { exhausted: exhausted.length, gone: 1, endpointDisabled: 2, replayed: revived.received.length },
      callbacksReceived: everything.length,
    });
    jobs.close();
  }, 900_000);
});
