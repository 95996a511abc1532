/*
 * Automatic rollback on the real pipeline: the shuffled-user control prior (models/demo-v1-control,
 * trained on the same likes with user ids permuted, so it does not personalize) goes out as a
 * canary; the monitor scores served outputs of both arms, finds the candidate worse beyond noise
 * and sets its weight to 0 by itself, with the model.rolled_back event and a signed callback.
 */
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createJobClient,
  createModelClient,
  startStack,
  startWebhookReceiver,
  type JobClient,
  type ModelClient,
  type Stack,
  type WebhookReceiver,
} from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

const WINDOW_SECONDS = 600;

describe("canary rolled back by the monitor", () => {
  let stack: Stack;
  let jobs: JobClient;
  let models: ModelClient;
  let receiver: WebhookReceiver;
  // Users both versions know (the control has no rows for the 20 users added later to demo-v1).
  const users = modelUserIds("demo-v1-control").slice(0, 80);

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({
      tenants: ["acme"],
      services: ["gateway", "prior-worker", "decoder-worker", "notifier", "monitor"],
      env: {
        monitor: {
          MONITOR_SAMPLE_RATE: "1",
          MONITOR_TENANT_REFRESH_MS: "200",
          MONITOR_BLOCK_MS: "200",
          MONITOR_MAX_IN_FLIGHT: "64",
          MONITOR_CANARY_WINDOW_SECONDS: String(WINDOW_SECONDS),
          MONITOR_CANARY_MIN_USERS: "8",
          MONITOR_ROLLBACK_CALLBACKS: JSON.stringify({ acme: receiver.url }),
        },
      },
    });
    jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    models = createModelClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
  });
  afterAll(async () => {
    jobs?.close();
    models?.close();
    await stack?.stop();
    await receiver?.close();
  });

  it("the shuffled-user control as a 50% canary is rolled back within the window, with the event, the callback and the alert metric", async () => {
    const started = Date.now();
    await models.setCanary("demo-v1-control", 50, "control canary");
    // Jobs without model_version: the policy splits the users between the arms.
    const routed: string[] = [];
    for (const [i, userId] of users.entries()) {
      const { job } = await jobs.createJob({ requestId: `canary-${i}`, userId, numImages: 2 });
      routed.push(job!.modelVersion);
      if (i % 20 === 19) expect((await untilJobDone(jobs, job!.jobId, 60_000)).state).toBe(JobState.JOB_STATE_SUCCEEDED); // pace to the pipeline
      if ((await models.getTrafficPolicy()).policy!.candidateWeight === 0) break;
    }
    expect(routed).toContain("demo-v1-control");
    expect(routed).toContain("demo-v1");
    await expect.poll(async () => (await models.getTrafficPolicy()).policy!.candidateWeight, { timeout: 120_000, interval: 250 }).toBe(0);
    expect(Date.now() - started).toBeLessThan(WINDOW_SECONDS * 1000);

    const policy = (await models.getTrafficPolicy()).policy!;
    expect(policy).toMatchObject({ stable: "demo-v1", candidate: "demo-v1-control", candidateWeight: 0 });
    expect(policy.reason).toMatch(/^monitor: candidate demo-v1-control rolled back: personalization lift .* is below the stable version's/);
    const events = (await models.listModelEvents(10)).events;
    expect(events[0]).toMatchObject({ type: "model.rolled_back", version: "demo-v1-control", tenant: "acme", actor: "monitor" });

    await receiver.until((all) => all.some((h) => JSON.parse(h.body).type === "model.rolled_back"), 60_000);
    const hook = receiver.received.find((h) => JSON.parse(h.body).type === "model.rolled_back")!;
    const body = new Webhook(stack.tenants.acme!.webhookSecret).verify(hook.body, {
      "webhook-id": hook.headers["webhook-id"] as string,
      "webhook-timestamp": hook.headers["webhook-timestamp"] as string,
      "webhook-signature": hook.headers["webhook-signature"] as string,
    }) as { data: { candidate: string; stable: string; statistic: string; candidateValue: number; stableValue: number } };
    expect(body.data).toMatchObject({ candidate: "demo-v1-control", stable: "demo-v1", statistic: "personalization" });
    expect(body.data.candidateValue).toBeLessThan(body.data.stableValue);

    const metrics = await (await fetch(`http://127.0.0.1:${stack.services.monitor!.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/rebeca_monitor_canary_rollbacks_total\{[^}]*tenant="acme"[^}]*candidate="demo-v1-control"[^}]*\} 1/);
    expect(stack.services.monitor!.process.lines.join("\n")).toContain("canary rolled back: tenant acme sends no user to demo-v1-control any more (was 50%)");
    // After the rollback every new job is on the stable version.
    const after = await Promise.all(users.slice(0, 20).map((u, i) => jobs.createJob({ requestId: `after-${i}`, userId: u }).then((r) => r.job!.modelVersion)));
    expect(new Set(after)).toEqual(new Set(["demo-v1"]));
  });
});
