import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { chunksOf, createBatchClient, startStack, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";
import { checkBatch, report } from "../support/invariants.js";
import { startSlowProxy, type SlowProxy } from "../support/slow-proxy.js";

/*
 * Spot-safe decode shards (issue 18): a decoder is SIGKILLed in the middle of a shard (a
 * preempted spot node) and a successor takes the shard over. The shard's finished chunks are
 * recorded in Redis, so the successor decodes only what was not recorded: redone work is at most
 * the one chunk that was in flight, counted from the object store's own log of writes (every
 * image PUT), and the successor's metrics say how much it resumed. The decoder reaches S3 through
 * the slow proxy so a shard lasts long enough for the kill to land inside it.
 */
const USERS = 64;
const SHARD_USERS = 32;
const IMAGES = 4;
const CHUNK = 16;
const SHARD_IMAGES = SHARD_USERS * IMAGES;

/** The value of the first sample of `name` carrying `label` (e.g. `source="resumed"`) in a Prometheus text exposition; 0 when absent. */
function sample(text: string, name: string, label: string): number {
  const line = text.split("\n").find((l) => l.startsWith(name + "{") && l.includes(label));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("faults: spot decoder killed mid-shard", () => {
  let stack: Stack;
  let proxy: SlowProxy;
  let redis: Redis;
  const fast = { LOCK_DURATION_MS: "3000", STALLED_INTERVAL_MS: "1000" };
  let decoderEnv: Record<string, string>;

  beforeAll(async () => {
    stack = await startStack({
      s3LogPuts: true,
      services: ["gateway", "prior-worker"],
      env: { gateway: { SHARD_SIZE: String(SHARD_USERS) }, "prior-worker": fast },
    });
    proxy = await startSlowProxy(Number(new URL(stack.s3.endpoint).port), { delayMs: 40 });
    // One shard at a time: the kill interrupts exactly one shard.
    decoderEnv = { ...fast, S3_ENDPOINT: proxy.endpoint, CONCURRENCY: "1", DECODE_CHUNK_IMAGES: String(CHUNK), UPLOAD_CONCURRENCY: "4" };
    await stack.start("decoder-worker", decoderEnv);
    redis = new Redis(stack.redis.url);
  });
  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
    await proxy?.close();
  });

  it(`a successor resumes the killed decoder's shard: redone work at most one chunk (${CHUNK} images), nothing lost or duplicated`, async () => {
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const users = modelUserIds();
    const ids = Array.from({ length: USERS }, (_, i) => users[i % users.length]!);
    const batch = await batches.createBatch({ requestId: "spot-1", numImages: IMAGES }, chunksOf(ids, 50));
    const progressKey = (shard: number) => `${stack.prefix}:shardchunks:${batch.batchId}:${shard}`;

    // Kill once a shard has at least two chunks recorded and is not finished.
    let victimShard = -1;
    const deadline = Date.now() + 120_000;
    while (victimShard < 0 && Date.now() < deadline) {
      for (let s = 0; s < USERS / SHARD_USERS; s++) if ((await redis.hlen(progressKey(s))) >= 2) victimShard = s;
      if (victimShard < 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(victimShard, "a shard recorded chunks before the deadline").toBeGreaterThanOrEqual(0);
    // A random moment inside the next chunk, so the kill may land with some of its uploads done.
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    await stack.services["decoder-worker"]!.process.kill();
    // Read after the kill: this is exactly what the dead worker left recorded.
    const recorded = Object.values(await redis.hgetall(progressKey(victimShard))).reduce((n, json) => n + (JSON.parse(json) as unknown[]).length, 0);
    expect(recorded, "the kill landed inside the shard").toBeLessThan(SHARD_IMAGES);
    expect(recorded).toBeGreaterThanOrEqual(2 * CHUNK);

    const successor = await stack.start("decoder-worker", decoderEnv);
    const figures = await checkBatch(stack, batches, batch.batchId, ids, IMAGES, 180_000);

    // Redone work, from the object store's log: every image key written more than once.
    const puts = new Map<string, number>();
    for (const line of stack.s3.process.lines) {
      const m = /"msg":"s3 put","key":"([^"]+\/users\/[^"]+\.png)"/.exec(line);
      if (m) puts.set(m[1]!, (puts.get(m[1]!) ?? 0) + 1);
    }
    const redone = [...puts.values()].reduce((n, c) => n + c - 1, 0);
    expect(puts.size).toBe(USERS * IMAGES);
    expect(redone, "images uploaded twice").toBeLessThanOrEqual(CHUNK);

    const metrics = await (await fetch(`http://127.0.0.1:${successor.httpPort}/metrics`)).text();
    const resumed = sample(metrics, "rebeca_decoder_shard_images_total", 'source="resumed"');
    const decodedBySuccessor = sample(metrics, "rebeca_decoder_shard_images_total", 'source="decoded"');
    expect(resumed).toBe(recorded);
    // The successor decoded the rest of the killed shard and any shard the victim never started.
    expect(decodedBySuccessor).toBe(USERS * IMAGES - recorded);
    // Finished shards leave no progress record behind.
    for (let s = 0; s < USERS / SHARD_USERS; s++) expect(await redis.exists(progressKey(s))).toBe(0);

    report("spot-shard", { ...figures, shardImages: SHARD_IMAGES, chunk: CHUNK, recordedAtKill: recorded, resumed, decodedBySuccessor, redoneImages: redone });
    batches.close();
  }, 300_000);
});
