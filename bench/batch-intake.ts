/*
 * Batch intake: 1,000,000 user ids streamed through CreateBatch and fully enqueued (every shard
 * job in Redis, the batch sealed) — target ≤ 60 s on this 2-core machine with Redis used_memory
 * growth ≤ 256 MB for the pending batch. Baseline in the same run: a bare BullMQ addBulk of the
 * same number of shard jobs with the same payloads (chunks of 1,000), against the same Redis.
 * No workers run, so everything stays pending while it is measured.
 */
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { chunksOf, createBatchClient, startStack } from "@rebeca/devstack";
import { stageQueue } from "@rebeca/contracts";
import { fmt, report } from "./stats.js";

const USERS = Number(process.env.BENCH_USERS ?? 1_000_000);
const SHARD = 256;
const CHUNK = 10_000;

const usedMemory = async (redis: Redis) => Number(/used_memory:(\d+)/.exec(await redis.info("memory"))![1]);

const stack = await startStack({ services: ["gateway"], tenants: ["bench"], env: { gateway: { MAX_PRIOR_BACKLOG: "100000000", SHARD_SIZE: String(SHARD) } } });
const redis = new Redis(stack.redis.url, { maxRetriesPerRequest: null });
const client = createBatchClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
try {
  const ids = Array.from({ length: USERS }, (_, i) => `user-${String(i).padStart(8, "0")}`);

  // Baseline: bare addBulk of the same shard jobs.
  const raw = new Queue("raw-intake", { connection: redis, prefix: stack.prefix });
  const spec = {
    numImages: 1,
    guidance: 3,
    steps: 50,
    sampler: "ddim",
    seed: 1,
    modelVersion: "demo-v1",
    priority: 0,
    labels: {},
    callbackUrl: "",
    callbackEvents: [],
    unknownUser: "reject",
    shardSize: SHARD,
  };
  const m0 = await usedMemory(redis);
  let t0 = performance.now();
  const shards = Math.ceil(USERS / SHARD);
  for (let s = 0; s < shards; s += 1000) {
    await raw.addBulk(
      Array.from({ length: Math.min(1000, shards - s) }, (_, j) => {
        const k = s + j;
        return {
          name: "shard",
          data: { tenant: "bench", batchId: "raw", shard: k, firstPosition: k * SHARD, userIds: ids.slice(k * SHARD, (k + 1) * SHARD), spec },
          opts: { jobId: `raw-s${k}`, priority: 1 },
        };
      }),
    );
  }
  const baseSeconds = (performance.now() - t0) / 1000;
  const baseMemory = (await usedMemory(redis)) - m0;
  await raw.obliterate({ force: true });
  await raw.close();

  const m1 = await usedMemory(redis);
  t0 = performance.now();
  const batch = await client.createBatch({ requestId: "intake-1m" }, chunksOf(ids, CHUNK));
  const seconds = (performance.now() - t0) / 1000;
  const memory = (await usedMemory(redis)) - m1;
  const queued = await new Queue(stageQueue("prior", "bench", "batch"), { connection: redis, prefix: stack.prefix }).getJobCounts("wait", "prioritized");
  const jobs = Object.values(queued).reduce((a, b) => a + b, 0);
  if (Number(batch.counts!.total) !== USERS || jobs !== shards)
    throw new Error(`batch holds ${batch.counts!.total} users in ${jobs} queued shards; expected ${USERS} in ${shards}`);
  const mb = (b: number) => fmt(b / 1024 / 1024, 1);
  report(
    "batch intake",
    [
      {
        path: `bare BullMQ addBulk of ${shards} shard jobs (baseline)`,
        seconds: fmt(baseSeconds),
        users_per_s: fmt(USERS / baseSeconds, 0),
        redis_mb: mb(baseMemory),
      },
      { path: `CreateBatch stream of ${USERS} ids (chunks of ${CHUNK})`, seconds: fmt(seconds), users_per_s: fmt(USERS / seconds, 0), redis_mb: mb(memory) },
    ],
    {
      users: USERS,
      shards,
      seconds,
      baseline_seconds: baseSeconds,
      ratio_time: seconds / baseSeconds,
      redis_growth_mb: memory / 1024 / 1024,
      pass: seconds <= 60 && memory <= 256 * 1024 * 1024,
    },
  );
  console.log(
    `${USERS} ids enqueued in ${fmt(seconds)} s (target ≤ 60 s; ${fmt(seconds / baseSeconds)}× bare addBulk), Redis +${mb(memory)} MB (target ≤ 256 MB)`,
  );
} finally {
  client.close();
  redis.disconnect();
  await stack.stop();
}
