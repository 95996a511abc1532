/*
 * Pruning MODEL_CACHE_DIR on real Redis, S3 and files: five versions of one size in a cache bound
 * to two and a half; one is loaded (the service's inUse), one pinned by a tenant's policy, one named
 * by accepted work. The two nothing protects are deleted, least recently used first; the cache then
 * stays over its bound rather than touch the rest, and says so; a pruned version is fetched again.
 */
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, startS3, type RedisServer, type S3Server } from "@rebeca/devstack";
import { createS3BlobStore, createS3Client } from "@rebeca/storage";
import {
  createAcceptedVersions,
  createPolicyStore,
  createRegistrySource,
  listCache,
  listPublished,
  publishDerivedVersion,
  publishVersionDir,
  type RegistryDeps,
} from "./index.js";

const models = fileURLToPath(new URL("../../../models/", import.meta.url));
const present = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe("model cache pruning", () => {
  let redisServer: RedisServer;
  let s3: S3Server;
  let redis: Redis;
  let deps: RegistryDeps;
  let cache: string;
  let empty: string;

  beforeAll(async () => {
    [redisServer, s3] = await Promise.all([startRedis(), startS3()]);
    redis = new Redis(redisServer.url);
    const blobs = createS3BlobStore(createS3Client({ bucket: s3.bucket, endpoint: s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }), s3.bucket);
    deps = { blobs, redis, objectPrefix: "registry", redisPrefix: "{prune}" };
    cache = await mkdtemp(join(tmpdir(), "registry-prune-"));
    empty = await mkdtemp(join(tmpdir(), "registry-embedded-"));
  });
  afterAll(async () => {
    redis?.disconnect();
    await Promise.all([redisServer?.stop(), s3?.stop()]);
    await Promise.all([rm(cache, { recursive: true, force: true }), rm(empty, { recursive: true, force: true })]);
  });

  it("deletes only versions nothing protects, least recently used first, reports the bytes, and refetches a pruned one", async () => {
    await publishVersionDir(deps, join(models, "demo-v1-control"), { actor: "test" });
    const names = ["p-old", "p-loaded", "p-pinned", "p-queued", "p-new"];
    for (const v of names) await publishDerivedVersion(deps, "demo-v1-control", v, new Map(), { actor: "test", reason: "prune test" });
    const published = (await listPublished(redis, "{prune}")).find((p) => p.version === "p-old")!;
    const size = published.bytes; // its files (the cache adds a small verified marker)
    const metrics = new Registry();
    const created = createRegistrySource({
      config: {
        MODEL_CACHE_DIR: cache,
        REGISTRY_PREFIX: "registry",
        REGISTRY_POLL_MS: 60_000,
        MODEL_MAX_LOADED: 4,
        MODEL_CACHE_MAX_BYTES: Math.floor(2.5 * size),
        MODEL_CACHE_KEEP_USED_SECONDS: 0,
        MODELS_DIR: empty,
        QUEUE_PREFIX: "{prune}",
        JOB_RETENTION_SECONDS: 3600,
      },
      redis,
      blobs: deps.blobs,
      service: "test",
      metrics,
      log: { info: () => {}, warn: () => {} },
      inUse: () => ["p-loaded"],
    })!;
    await createPolicyStore({ redis, redisPrefix: "{prune}", defaultStable: "demo-v1" }).canary("acme", "p-pinned", 10, "test", "pin");
    createAcceptedVersions(redis, "{prune}").note("p-queued");

    const { source, prune } = created;
    for (const v of names) await source.ensure(v);
    await prune();
    const kept = (await listCache(cache, new Map())).map((c) => c.bytes);
    for (const b of kept) expect(b - size).toBeLessThan(100);
    const left = (await listCache(cache, new Map())).map((c) => c.version).sort();
    expect(left).toEqual(["p-loaded", "p-pinned", "p-queued"]);
    expect(await present(join(cache, "p-old"))).toBe(false);
    const text = await metrics.metrics();
    expect(text).toMatch(new RegExp(`rebeca_model_cache_bytes ${kept.reduce((a, b) => a + b, 0)}\\b`));
    expect(text).toMatch(/rebeca_model_cache_pruned_total 2\b/);
    // A pruned version is fetched and verified again by its next use.
    expect(await source.ensure("p-old")).toBe(cache);
    expect(await present(join(cache, "p-old", "prior.onnx"))).toBe(true);
  });
});
