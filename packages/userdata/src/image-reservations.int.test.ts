import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisServer } from "@rebeca/devstack";
import { redisKeys } from "@rebeca/contracts";
import { createImageReservations } from "./image-reservations.js";
import { userDataKeys } from "./keys.js";

describe("batch image reservations (real Redis)", () => {
  let server: RedisServer;
  let redis: Redis;
  const prefix = "{resv}";
  const now = () => new Date("2026-12-03T01:00:00Z");
  const usageKey = userDataKeys(prefix).usage("acme", "2026-12-03");
  const ledgerKey = userDataKeys(prefix).imageReservations("acme", "2026-12-03");
  const batch = (id: string, state: string, succeeded = 0) => redis.hset(redisKeys(prefix).batch(id), "state", state, "succeeded", succeeded);

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it("reserves up to exactly the limit, refuses one over with nothing changed, and releases what an ended batch did not make", async () => {
    const r = createImageReservations(redis, prefix, now);
    await redis.hset(usageKey, "images", 2); // two images made today by single jobs
    await batch("batch_a", "receiving");
    // 4 users × 2 images: 2 + 8 = 10, exactly the limit, passes.
    expect(await r.reserve("acme", { batchId: "batch_a", images: 8, numImages: 2 }, 10)).toEqual({ ok: true, used: 10 });
    expect(await r.used("acme")).toBe(10);
    // A repeat (a resumed stream) or a smaller ask reserves nothing more.
    expect(await r.reserve("acme", { batchId: "batch_a", images: 8, numImages: 2 }, 10)).toEqual({ ok: true, used: 10 });
    expect(await r.reserve("acme", { batchId: "batch_a", images: 4, numImages: 2 }, 10)).toEqual({ ok: true, used: 10 });

    // One image over: refused, and the ledger is as it was.
    const before = await redis.hgetall(ledgerKey);
    await batch("batch_b", "receiving");
    expect(await r.reserve("acme", { batchId: "batch_b", images: 1, numImages: 1 }, 10)).toEqual({ ok: false, used: 11 });
    expect(await redis.hgetall(ledgerKey)).toEqual(before);
    // batch_a growing past the limit is refused too, keeping its reservation of 8.
    expect((await r.reserve("acme", { batchId: "batch_a", images: 10, numImages: 2 }, 10)).ok).toBe(false);
    expect(await redis.hget(ledgerKey, "batch_a")).toBe("8:2");

    // batch_a makes 2 users' images (4, now in usage): they are counted once, not twice.
    await batch("batch_a", "running", 2);
    await redis.hincrby(usageKey, "images", 4);
    expect(await r.used("acme")).toBe(10);

    // It expires with 2 users not done: their 4 images go back to the quota; what it made stays.
    await batch("batch_a", "expired", 2);
    expect(await r.used("acme")).toBe(6);
    expect(await redis.hexists(ledgerKey, "batch_a")).toBe(0);
    expect(await r.reserve("acme", { batchId: "batch_b", images: 4, numImages: 1 }, 10)).toEqual({ ok: true, used: 10 });

    // A cancelled batch releases the same way; a batch whose record is gone holds nothing.
    await batch("batch_b", "cancelled");
    expect(await r.used("acme")).toBe(6);
    await redis.hset(ledgerKey, "batch_gone", "100:1");
    expect(await r.used("acme")).toBe(6);
  });

  it("keeps tenants and days apart", async () => {
    const r = createImageReservations(redis, prefix, now);
    await batch("batch_g", "running");
    expect((await r.reserve("globex", { batchId: "batch_g", images: 5, numImages: 1 }, 5)).ok).toBe(true);
    expect(await r.used("globex")).toBe(5);
    const tomorrow = createImageReservations(redis, prefix, () => new Date("2026-12-04T01:00:00Z"));
    expect(await tomorrow.used("globex")).toBe(0);
  });
});
