/*
 * The nightly model from feedback on real Redis and S3 (training/nightly.sh): interactions in S3
 * from the demo world — new likes for existing users and new users — give a candidate that passes
 * the gate and is published to the registry; the same file with its user ids shuffled gives one
 * that fails the gate, and nothing is published.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startRedis, startS3, type RedisServer, type S3Server } from "@rebeca/devstack";
import { listPublished } from "@rebeca/registry";
import { createS3BlobStore, createS3Client, type BlobStore } from "@rebeca/storage";

const WORLD = `${REPO_ROOT}models/demo-v1/world`;
const PREFIX = "{nightly}";

/** CSV rows of a world ratings file as [user, item, like]. */
const ratings = (file: string) =>
  readFileSync(`${WORLD}/${file}`, "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => l.split(","));

/** A fixed shuffle (a linear congruential generator), so the poisoned file is the same every run. */
function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  let s = 12345;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("nightly model from feedback", () => {
  let redisServer: RedisServer;
  let s3: S3Server;
  let redis: Redis;
  let blobs: BlobStore;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    [redisServer, s3] = await Promise.all([startRedis(), startS3()]);
    redis = new Redis(redisServer.url);
    blobs = createS3BlobStore(createS3Client({ bucket: s3.bucket, endpoint: s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }), s3.bucket);
    // New likes of 20 existing users (the verifier's disjoint ratings) and 10 users the model does not know.
    const existing = new Set([...new Set(ratings("ratings_verifier.csv").map((r) => r[0]!))].sort().slice(0, 20));
    const newcomers = new Set([...new Set(ratings("ratings_new_users.csv").map((r) => r[0]!))].sort().slice(0, 10));
    const rows = [
      ...ratings("ratings_verifier.csv").filter((r) => existing.has(r[0]!)),
      ...ratings("ratings_new_users.csv")
        .filter((r) => newcomers.has(r[0]!))
        .map(([u, i, l]) => [`${u}-new`, i!, l!]),
    ];
    const csv = (rs: string[][]) => new TextEncoder().encode(["user_id,item_id,like", ...rs.map((r) => r.join(","))].join("\n") + "\n");
    await blobs.put("feedback/good.csv", csv(rows), "text/csv");
    const ids = shuffled(rows.map((r) => r[0]!));
    await blobs.put("feedback/poisoned.csv", csv(rows.map((r, n) => [ids[n]!, r[1]!, r[2]!])), "text/csv");
    env = {
      ...process.env,
      BASE_MODEL_DIR: `${REPO_ROOT}models/demo-v1`,
      ITEMS: `${WORLD}/items.npy`,
      ITEM_IDS: `${WORLD}/item_ids.txt`,
      S3_BUCKET: s3.bucket,
      S3_ENDPOINT: s3.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      REDIS_URL: redisServer.url,
      QUEUE_PREFIX: PREFIX,
      FEEDBACK_ARGS: "--steps 150 --perms 200 --eval-users 30 --per-user 4 --eval-steps 10",
    };
  });
  afterAll(async () => {
    redis?.disconnect();
    await Promise.all([redisServer?.stop(), s3?.stop()]);
  });

  const nightly = async (file: string, version: string) =>
    (
      await promisify(execFile)("bash", [`${REPO_ROOT}training/nightly.sh`], {
        env: { ...env, INTERACTIONS_URI: `s3://${s3.bucket}/feedback/${file}`, CANDIDATE_VERSION: version },
        timeout: 400_000,
      })
    ).stdout;

  // Each run fits 30 users' rows and gates them on one torch thread: about a minute on an idle core.
  it("a good feedback file gives a candidate that passes the gate and is published with its gate figures", { timeout: 420_000 }, async () => {
    const out = await nightly("good.csv", "demo-v1-nightly-1");
    expect(out).toContain("published demo-v1-nightly-1");
    expect((await listPublished(redis, PREFIX)).map((p) => p.version)).toEqual(["demo-v1-nightly-1"]);
    const manifest = JSON.parse(new TextDecoder().decode(await blobs.get("registry/models/demo-v1-nightly-1/manifest.json"))) as {
      users: { rows: number };
      training: { feedback: { interactions: { new_users: number; refit_users: number }; candidate: { p: number } }[] };
    };
    expect(manifest.users.rows).toBe(221 + 10); // ten new rows; the twenty existing users re-fitted in place
    expect(manifest.training.feedback.at(-1)).toMatchObject({ interactions: { new_users: 10, refit_users: 20 } });
    expect(manifest.training.feedback.at(-1)!.candidate.p).toBeLessThanOrEqual(0.01);
  });

  it("a poisoned file (user ids shuffled across rows) fails the gate and publishes nothing, saying why", { timeout: 420_000 }, async () => {
    const out = await nightly("poisoned.csv", "demo-v1-nightly-2");
    expect(out).toMatch(/nothing published: permutation test p = [0-9.]+ > 0\.01/);
    expect((await listPublished(redis, PREFIX)).map((p) => p.version)).toEqual(["demo-v1-nightly-1"]);
  });
});
