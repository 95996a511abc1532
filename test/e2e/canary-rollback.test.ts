/*
 * Automatic rollback on the real pipeline: the shuffled-user control prior (models/demo-v1-control,
 * trained on the same likes with user ids permuted, so it does not personalize) goes out as a
 * canary; the monitor scores served outputs of both arms, finds the candidate worse beyond noise
 * and sets its weight to 0 by itself, with the model.rolled_back event and a signed callback.
 * Twice: with the control embedded in every service's MODELS_DIR, and published only to the
 * registry (the monitor fetches and verifies it through its model cache to score it).
 */
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createJobClient,
  createModelClient,
  REPO_ROOT,
  startStack,
  startWebhookReceiver,
  type JobClient,
  type ModelClient,
  type Stack,
  type WebhookReceiver,
} from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { createS3BlobStore, createS3Client } from "@rebeca/storage";
import { publishVersionDir, userBucket } from "@rebeca/registry";
import { untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

const WINDOW_SECONDS = 600;

interface Scenario {
  title: string;
  /** The canary's weight, percent. */
  weight: number;
  /** Publish the control only to the registry: every service's MODELS_DIR holds demo-v1 alone, each service its own MODEL_CACHE_DIR. */
  registryOnly: boolean;
}

function rollbackSuite(sc: Scenario): void {
  describe(sc.title, () => {
    let stack: Stack;
    let jobs: JobClient;
    let models: ModelClient;
    let receiver: WebhookReceiver;
    const temps: string[] = [];
    // Users both versions know (the control has no rows for the 20 users added later to demo-v1).
    // At a small weight, the candidate's users (by the policy's own hash) and as many stable ones, so
    // both arms reach the judge's minimum within a few dozen jobs.
    const known = modelUserIds("demo-v1-control");
    const onCandidate = known.filter((u) => userBucket("acme", u) < sc.weight * 100);
    const users = sc.weight >= 50 ? known.slice(0, 80) : [...onCandidate, ...known.filter((u) => !onCandidate.includes(u)).slice(0, onCandidate.length)];

    beforeAll(async () => {
      receiver = await startWebhookReceiver();
      const temp = async () => {
        temps.push(await mkdtemp(join(tmpdir(), "rebeca-canary-")));
        return temps.at(-1)!;
      };
      let modelsDir: string | undefined;
      const cacheEnv: Record<string, Record<string, string>> = {};
      if (sc.registryOnly) {
        modelsDir = await temp();
        await cp(`${REPO_ROOT}models/demo-v1`, join(modelsDir, "demo-v1"), { recursive: true });
        for (const name of ["gateway", "prior-worker", "decoder-worker", "monitor"])
          cacheEnv[name] = { MODEL_CACHE_DIR: await temp(), REGISTRY_POLL_MS: "1000" };
      }
      stack = await startStack({
        tenants: ["acme"],
        services: ["gateway", "prior-worker", "decoder-worker", "notifier", "monitor"],
        ...(modelsDir ? { modelsDir } : {}),
        env: {
          ...cacheEnv,
          monitor: {
            ...cacheEnv.monitor,
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
      if (sc.registryOnly) {
        const redis = new Redis(stack.redis.url);
        const blobs = createS3BlobStore(
          createS3Client({ bucket: stack.s3.bucket, endpoint: stack.s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }),
          stack.s3.bucket,
        );
        try {
          await publishVersionDir({ blobs, redis, objectPrefix: "registry", redisPrefix: stack.prefix }, `${REPO_ROOT}models/demo-v1-control`, {
            actor: "test",
          });
        } finally {
          redis.disconnect();
        }
      }
    });
    afterAll(async () => {
      jobs?.close();
      models?.close();
      await stack?.stop();
      await receiver?.close();
      for (const dir of temps) await rm(dir, { recursive: true, force: true });
    });

    it(`the shuffled-user control as a ${sc.weight}% canary is rolled back within the window, with the event, the callback and the alert metric`, async () => {
      const started = Date.now();
      if (sc.registryOnly)
        await expect
          .poll(async () => (await models.listModels()).versions.map((v) => v.version), { timeout: 15_000, interval: 100 })
          .toContain("demo-v1-control");
      await models.setCanary("demo-v1-control", sc.weight, "control canary");
      // Jobs without model_version: the policy splits the users between the arms.
      const routed: string[] = [];
      for (let i = 0; i < 4 * users.length; i++) {
        const userId = users[i % users.length]!;
        const { job } = await jobs.createJob({ requestId: `canary-${i}`, userId, numImages: 2 });
        routed.push(job!.modelVersion);
        // The gateway routes by the same hash: a user outside the candidate's buckets never gets it.
        if (job!.modelVersion === "demo-v1-control") expect(onCandidate).toContain(userId);
        if (i % 20 === 19) expect((await untilJobDone(jobs, job!.jobId, 60_000)).state).toBe(JobState.JOB_STATE_SUCCEEDED); // pace to the pipeline
        if ((await models.getTrafficPolicy()).policy!.candidateWeight === 0) break;
      }
      expect(routed).toContain("demo-v1-control");
      expect(routed).toContain("demo-v1");
      await expect.poll(async () => (await models.getTrafficPolicy()).policy!.candidateWeight, { timeout: 120_000, interval: 250 }).toBe(0);
      expect(Date.now() - started).toBeLessThan(WINDOW_SECONDS * 1000);

      const policy = (await models.getTrafficPolicy()).policy!;
      expect(policy).toMatchObject({ stable: "demo-v1", candidate: "demo-v1-control", candidateWeight: 0 });
      // Personalization, not the error rate: the monitor scored the candidate's served images.
      expect(policy.reason).toMatch(/^monitor: candidate demo-v1-control rolled back: personalization lift .* is below the stable version's/);
      // The policy and its event are written in one step: the rolled-back policy read above has its event.
      expect((await models.listModelEvents(10)).events[0]).toMatchObject({
        type: "model.rolled_back",
        version: "demo-v1-control",
        tenant: "acme",
        actor: "monitor",
      });

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
      expect(metrics).toMatch(/rebeca_monitor_users_scored_total\{[^}]*model_version="demo-v1-control"[^}]*\} [1-9]/);
      if (sc.registryOnly) expect(stack.services.monitor!.process.lines.join("\n")).toContain("model version fetched from the registry and verified");
      expect(stack.services.monitor!.process.lines.join("\n")).toContain(
        `canary rolled back: tenant acme sends no user to demo-v1-control any more (was ${sc.weight}%)`,
      );
      // After the rollback every new job is on the stable version.
      const after = await Promise.all(
        users.slice(0, 20).map((u, i) => jobs.createJob({ requestId: `after-${i}`, userId: u }).then((r) => r.job!.modelVersion)),
      );
      expect(new Set(after)).toEqual(new Set(["demo-v1"]));
    });
  });
}

rollbackSuite({ title: "canary rolled back by the monitor", weight: 50, registryOnly: false });
rollbackSuite({ title: "a registry-only canary rolled back by the monitor on personalization", weight: 10, registryOnly: true });
