/*
 * Retention sweeper throughput on real Redis and s3rver: OWNERS finished jobs, each with
 * OBJECTS_PER_OWNER objects under its prefix (images + embeddings), registered as due in the
 * retention index; one sweeper deletes them all in bounded sweeps (RETENTION_SWEEP_MAX_OWNERS 100).
 * Baseline in the same run: the same number of objects, written the same way, deleted by bare
 * DeleteObjects requests of 1,000 known keys (no index, no listing, no records): the floor S3 sets.
 * The ratio is sweeper objects/s over bare objects/s.
 */
import { Redis } from "ioredis";
import { startRedis, startS3 } from "@rebeca/devstack";
import { objectKeys, redisKeys } from "@rebeca/contracts";
import { createOutputRecords, createRetentionIndex } from "@rebeca/jobstore";
import { createLogger, createMetricsRegistry } from "@rebeca/platform";
import { createS3BlobStore, createS3Client, ensureBucket } from "@rebeca/storage";
import { createRetentionSweeper } from "../services/monitor/src/retention-sweeper.js";
import { fmt, report } from "./stats.js";

const OWNERS = Number(process.env.BENCH_OWNERS ?? 500);
const OBJECTS_PER_OWNER = Number(process.env.BENCH_OBJECTS_PER_OWNER ?? 5);
const PREFIX = "{bench}";

const redisServer = await startRedis();
const s3 = await startS3();
const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
try {
  const client = createS3Client({ bucket: s3.bucket, endpoint: s3.endpoint, accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });
  await ensureBucket(client, s3.bucket);
  const blobs = createS3BlobStore(client, s3.bucket);
  const png = new Uint8Array(600).fill(7);
  const keysOf = (tenant: string, jobId: string) => [
    objectKeys.embeddings(tenant, jobId),
    ...Array.from({ length: OBJECTS_PER_OWNER - 1 }, (_, i) => objectKeys.image(tenant, jobId, i)),
  ];
  const writeAll = async (tenant: string) => {
    const keys = Array.from({ length: OWNERS }, (_, i) => keysOf(tenant, `job_${i}`)).flat();
    for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => blobs.put(k, png, "image/png")));
    return keys;
  };

  // Baseline: bare DeleteObjects of the known keys.
  const bareKeys = await writeAll("bare");
  let t0 = performance.now();
  await blobs.deleteMany(bareKeys);
  const bareSeconds = (performance.now() - t0) / 1000;

  // The sweeper: the same objects under owners registered as due, with finished job records.
  const sweptKeys = await writeAll("swept");
  const index = createRetentionIndex(redis, PREFIX);
  const keys = redisKeys(PREFIX);
  const ended = new Date(Date.now() - 3_600_000).toISOString();
  const pipeline = redis.pipeline();
  for (let i = 0; i < OWNERS; i++) {
    const jobId = `job_${i}`;
    pipeline.hset(
      keys.job(jobId),
      "state",
      "succeeded",
      "tenant",
      "swept",
      "doc",
      JSON.stringify({ jobId, state: "succeeded", endTime: ended, outputTtlSeconds: 60, outputs: [] }),
    );
    pipeline.zadd(keys.outputExpiry(), Date.now() - 1000, JSON.stringify(["job", "swept", jobId]));
  }
  await pipeline.exec();
  const sweeper = createRetentionSweeper({
    index,
    records: createOutputRecords(redis, PREFIX),
    blobs,
    registry: createMetricsRegistry("bench"),
    log: createLogger("bench", "warn"),
    maxOwners: 100,
  });
  t0 = performance.now();
  let objects = 0;
  let sweeps = 0;
  for (;;) {
    const r = await sweeper.sweepOnce();
    sweeps++;
    objects += r.objects;
    if (r.owners === 0) break;
  }
  const sweepSeconds = (performance.now() - t0) / 1000;
  let left = 0;
  for await (const _ of blobs.list("tenants/swept/")) left++;
  if (objects !== sweptKeys.length || left !== 0) throw new Error(`sweeper deleted ${objects} of ${sweptKeys.length}, ${left} left`);

  const bareRate = bareKeys.length / bareSeconds;
  const sweepRate = objects / sweepSeconds;
  report(
    "retention sweep",
    [
      { path: "bare DeleteObjects (known keys)", objects: bareKeys.length, seconds: fmt(bareSeconds), objects_per_s: fmt(bareRate, 0) },
      {
        path: `sweeper (${sweeps} sweeps of ≤ 100 owners)`,
        objects,
        seconds: fmt(sweepSeconds),
        objects_per_s: fmt(sweepRate, 0),
        owners_per_s: fmt(OWNERS / sweepSeconds, 0),
      },
    ],
    {
      owners: OWNERS,
      objects_per_owner: OBJECTS_PER_OWNER,
      bare_objects_per_s: bareRate,
      sweeper_objects_per_s: sweepRate,
      owners_per_s: OWNERS / sweepSeconds,
      ratio: sweepRate / bareRate,
    },
  );
  console.log(
    `sweeper: ${fmt(sweepRate, 0)} objects/s (${fmt(OWNERS / sweepSeconds, 0)} owners/s); bare DeleteObjects ${fmt(bareRate, 0)} objects/s; ratio ${fmt(sweepRate / bareRate)}`,
  );
} finally {
  redis.disconnect();
  await s3.stop();
  await redisServer.stop();
}
