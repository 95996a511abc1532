import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, startS3, type RedisServer, type S3Server } from "@rebeca/devstack";
import { createS3BlobStore, createS3Client, type BlobStore } from "@rebeca/storage";
import {
  createModelSource,
  createPolicyStore,
  listModelEvents,
  listPublished,
  publishDerivedVersion,
  publishVersionDir,
  registryObjectKeys,
  RegistryIntegrityError,
  routeVersion,
  VersionNotPublishedError,
  watchRegistry,
  type RegistryDeps,
} from "./index.js";

const models = fileURLToPath(new URL("../../../models/", import.meta.url));

describe("model registry on real Redis and S3", () => {
  let redisServer: RedisServer;
  let s3: S3Server;
  let redis: Redis;
  let blobs: BlobStore;
  let deps: RegistryDeps;
  let empty: string;
  let cache: string;

  beforeAll(async () => {
    [redisServer, s3] = await Promise.all([startRedis(), startS3()]);
    redis = new Redis(redisServer.url);
    blobs = createS3BlobStore(createS3Client({ bucket: s3.bucket, endpoint: s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }), s3.bucket);
    deps = { blobs, redis, objectPrefix: "registry", redisPrefix: "{reg}" };
    empty = await mkdtemp(join(tmpdir(), "registry-embedded-"));
    cache = await mkdtemp(join(tmpdir(), "registry-cache-"));
  });
  afterAll(async () => {
    redis?.disconnect();
    await Promise.all([redisServer?.stop(), s3?.stop()]);
    await Promise.all([rm(empty, { recursive: true, force: true }), rm(cache, { recursive: true, force: true })]);
  });

  it("publishes a model directory once, announces it, and a service fetches it verified byte for byte", async () => {
    const subscriber = new Redis(redisServer.url);
    const seen: string[] = [];
    const watcher = await watchRegistry({ subscriber, redis, redisPrefix: "{reg}", pollMs: 60_000, onVersion: (v) => seen.push(v) });
    try {
      const first = await publishVersionDir(deps, join(models, "demo-v1"), { actor: "test" });
      expect(first.created).toBe(true);
      expect(first.published.files).toBe(9); // manifest, parity, prior, user table, user ids and the decoder's four; not world/
      const again = await publishVersionDir(deps, join(models, "demo-v1"), { actor: "test" });
      expect(again.created).toBe(false);
      await expect.poll(() => seen, { timeout: 5000 }).toEqual(["demo-v1"]); // by pub/sub: the poll is a minute away

      const source = createModelSource({ ...deps, embeddedDir: empty, cacheDir: cache, service: "test" });
      const dir = await source.ensure("demo-v1");
      expect(dir).toBe(cache);
      for (const f of ["prior.onnx", "user_table.f32", "decoder/decoder.onnx"])
        expect(Buffer.compare(await readFile(join(cache, "demo-v1", f)), await readFile(join(models, "demo-v1", f)))).toBe(0);
      await expect(source.ensure("nobody-published-this")).rejects.toBeInstanceOf(VersionNotPublishedError);
      expect((await listPublished(redis, "{reg}")).map((p) => p.version)).toEqual(["demo-v1"]);
    } finally {
      await watcher.close();
    }
  });

  it("refuses a version whose file was altered after publishing, records model.refused, and keeps serving the others", async () => {
    const { published } = await publishDerivedVersion(deps, "demo-v1", "demo-v1-tampered", new Map(), { actor: "test", reason: "copy to corrupt" });
    expect(published.version).toBe("demo-v1-tampered");
    // Someone overwrites the prior in the bucket: the index no longer matches it.
    await blobs.put(registryObjectKeys("registry").file("demo-v1-tampered", "prior.onnx"), new Uint8Array(1000), "application/octet-stream");
    const refusals: string[] = [];
    const fresh = await mkdtemp(join(tmpdir(), "registry-cache-"));
    try {
      const source = createModelSource({ ...deps, embeddedDir: empty, cacheDir: fresh, service: "test", onRefused: (v, why) => refusals.push(`${v}: ${why}`) });
      const refused = source.ensure("demo-v1-tampered");
      await expect(refused).rejects.toBeInstanceOf(RegistryIntegrityError);
      await expect(refused).rejects.toThrow(/prior\.onnx is 1000 bytes/);
      expect(refusals).toHaveLength(1);
      expect(await source.ensure("demo-v1")).toBe(fresh); // the good version is still served
      // Refused once: a second ask does not fetch or record again.
      await expect(source.ensure("demo-v1-tampered")).rejects.toBeInstanceOf(RegistryIntegrityError);
      expect(refusals).toHaveLength(1);
      const events = await listModelEvents(redis, "{reg}");
      expect(events.filter((e) => e.type === "model.refused").map((e) => e.version)).toEqual(["demo-v1-tampered"]);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  it("a derived version replaces a file and re-hashes the manifests that name it", async () => {
    const table = new Uint8Array(await readFile(join(models, "demo-v1", "user_table.f32")));
    table.fill(0, 0, 128 * 4); // the first user's row blanked
    await publishDerivedVersion(deps, "demo-v1", "demo-v1-erased", new Map([["user_table.f32", table]]), { actor: "test", reason: "erase u0" });
    const source = createModelSource({ ...deps, embeddedDir: empty, cacheDir: cache, service: "test" });
    await source.ensure("demo-v1-erased");
    const manifest = JSON.parse(await readFile(join(cache, "demo-v1-erased", "manifest.json"), "utf8")) as {
      version: string;
      files: { user_table: { sha256: string } };
    };
    expect(manifest.version).toBe("demo-v1-erased");
    const { createHash } = await import("node:crypto");
    expect(manifest.files.user_table.sha256).toBe(createHash("sha256").update(table).digest("hex"));
  });

  it("traffic policy: a 10% canary sends 10% ± 3% of users, each user always to the same arm; rollback is recorded", async () => {
    const policies = createPolicyStore({ redis, redisPrefix: "{reg}", defaultStable: "demo-v1" });
    await policies.canary("acme", "demo-v1-erased", 10, "test", "try it");
    const policy = await policies.get("acme");
    const users = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
    const arms = users.map((u) => routeVersion(policy, "acme", u, () => true).arm);
    const share = arms.filter((a) => a === "candidate").length / users.length;
    expect(share).toBeGreaterThan(0.07);
    expect(share).toBeLessThan(0.13);
    expect(users.map((u) => routeVersion(policy, "acme", u, () => true).arm)).toEqual(arms);
    // A candidate this service cannot serve sends everyone to stable.
    expect(users.every((u) => routeVersion(policy, "acme", u, () => false).version === "demo-v1")).toBe(true);

    expect((await policies.rollback("acme", "monitor", "worse", "some-other-candidate")).changed).toBe(false);
    const rolled = await policies.rollback("acme", "monitor", "personalization worse");
    expect(rolled.policy).toMatchObject({ stable: "demo-v1", candidate: "demo-v1-erased", candidateWeight: 0 });
    const types = (await listModelEvents(redis, "{reg}")).filter((e) => e.tenant === "acme").map((e) => e.type);
    expect(types).toEqual(["model.rolled_back", "model.canary"]);
  });

  it("a policy change and its event are one step: every read sees the latest policy's event, and concurrent changes lose none", async () => {
    const policies = createPolicyStore({ redis, redisPrefix: "{reg}", defaultStable: "demo-v1" });
    const subscriber = new Redis(redisServer.url);
    const announced: string[] = [];
    await subscriber.subscribe("{reg}:models:changes");
    subscriber.on("message", (_channel, message: string) => announced.push(message));
    const reader = new Redis(redisServer.url);
    let reading = true;
    let reads = 0;
    const torn: string[] = [];
    // Reads the stored policy and the newest event in one MULTI while changes run: the newest
    // event for the tenant must always carry the stored policy (with separate writes, a read could
    // land between the policy and its event).
    const readLoop = (async () => {
      while (reading) {
        const [[, raw], [, rows]] = (await reader
          .multi()
          .hget("{reg}:models:policies", "race")
          .xrevrange("{reg}:models:events", "+", "-", "COUNT", 1)
          .exec()) as [[null, string | null], [null, [string, string[]][]]];
        reads++;
        if (!raw) continue;
        const fields = rows[0]![1];
        const detail = fields[fields.indexOf("detail") + 1];
        if (detail !== raw) torn.push(raw);
      }
    })();
    try {
      // Two actors change the same tenant at once (an operator's canaries, the monitor's rollbacks):
      // compare-and-set retries, and each applied change has one event.
      const actor = async (change: (i: number) => Promise<{ changed: boolean }>) => {
        const out: { changed: boolean }[] = [];
        for (let i = 0; i < 20; i++) out.push(await change(i));
        return out;
      };
      const applied = (
        await Promise.all([
          actor((i) => policies.canary("race", `cand-${i}`, 5 + i, "operator", `canary ${i}`)),
          actor((i) => policies.rollback("race", "monitor", `rollback ${i}`)),
        ])
      ).flat();
      reading = false;
      await readLoop;
      const changed = applied.filter((r) => r.changed).length;
      const events = (await listModelEvents(redis, "{reg}", 1000)).filter((e) => e.tenant === "race");
      expect(events).toHaveLength(changed);
      expect(events[0]!.detail).toBe(JSON.stringify(await policies.get("race")));
      expect(reads).toBeGreaterThan(0);
      expect(torn).toEqual([]);
      await expect.poll(() => announced.filter((m) => m === JSON.stringify({ kind: "policy", tenant: "race" })).length, { timeout: 5000 }).toBe(changed);
    } finally {
      reading = false;
      reader.disconnect();
      subscriber.disconnect();
    }
  });

  it("refuses to publish a directory whose file does not match its manifest", async () => {
    const bad = await mkdtemp(join(tmpdir(), "registry-bad-"));
    try {
      const { cp, writeFile } = await import("node:fs/promises");
      await cp(join(models, "demo-v1"), join(bad, "demo-v1"), { recursive: true, filter: (src) => !src.includes("/world") });
      await writeFile(join(bad, "demo-v1", "user_ids.txt"), "someone-else\n");
      await expect(publishVersionDir(deps, join(bad, "demo-v1"), { actor: "test", version: "demo-v1-bad" })).rejects.toThrow(/names version "demo-v1"/);
      await expect(publishVersionDir(deps, join(bad, "demo-v1"), { actor: "test" })).rejects.toThrow(/user_ids\.txt does not match/);
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });
});
