#!/usr/bin/env node
import { decodeShardTaskSchema, decodeTaskSchema, finalizeJobId, finalizeTaskSchema, jobOptions, redisKeys, stageQueue } from "@rebeca/contracts";
import { createBatchStore, createJobStore, markFailed, markShardFailed } from "@rebeca/jobstore";
import { createFinalizeProcessor, createShardDecodeProcessor } from "./shard-processor.js";
import { fairUploads } from "./fair-blobs.js";
import {
  Counter,
  createJobOutcomeCounter,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createShutdown,
  createFairLanes,
  createQueueCache,
  startStageWorkers,
  handBackAfterMs,
  weightOf,
  fatal,
  loadConfig,
  registerBacklogMetrics,
  startOpsServer,
  waitReady,
} from "@rebeca/platform";
import { createBlobStore } from "@rebeca/storage";
import { decoderWorkerConfigSchema } from "./config.js";
import { loadDecoders } from "./models.js";
import { resolveModelVersions } from "@rebeca/inference";
import { createDecodeProcessor } from "./processor.js";

async function main() {
  const config = loadConfig(decoderWorkerConfigSchema);
  const log = createLogger("decoder-worker", config.LOG_LEVEL);
  const health = { ready: false };
  const registry = createMetricsRegistry("decoder-worker");
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });

  const versions = await resolveModelVersions(config.MODELS_DIR, config.MODEL_VERSIONS);
  const decoders = await loadDecoders(
    config.MODELS_DIR,
    versions,
    { providers: config.ORT_PROVIDERS as never, requireGpu: config.REQUIRE_GPU, intraOpThreads: config.ORT_INTRA_OP_THREADS, interOpThreads: config.ORT_INTER_OP_THREADS },
    log,
  );
  const blobs = await createBlobStore(config);
  const redis = createRedis(config.REDIS_URL, "worker", log, "decoder-store");
  await waitReady(redis);
  const store = createJobStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN, onFinished: createJobOutcomeCounter(registry) });
  const queues = createQueueCache(redis, config.QUEUE_PREFIX);
  const imagesTotal = new Counter({ name: "rebeca_decoder_images_total", help: "Images decoded and stored", registers: [registry] });

  const lanes = createFairLanes({ lanes: config.DECODE_LANES, weight: weightOf(config.TENANT_WEIGHTS) });
  const batches = createBatchStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN });
  const decodeQueueOf = (tenant: string) => queues.get("decode", tenant, stageQueue("decode", tenant));
  const blobsFor = fairUploads(blobs, createFairLanes({ lanes: config.UPLOAD_LANES, weight: weightOf(config.TENANT_WEIGHTS) }));
  const decodeJob = createDecodeProcessor({ store, decoders, blobs, blobsFor, lanes, observe: (n) => imagesTotal.inc(n) });
  const decodeShard = createShardDecodeProcessor({
    chunkImages: config.DECODE_CHUNK_IMAGES,
    uploadConcurrency: config.UPLOAD_CONCURRENCY,
    batches,
    decoders,
    blobs,
    blobsFor,
    lanes,
    finalize: async (tenant, batchId) => void (await decodeQueueOf(tenant).add("finalize", { tenant, batchId }, jobOptions({ jobId: finalizeJobId(batchId) }))),
    observe: (n) => imagesTotal.inc(n),
  });
  const finalize = createFinalizeProcessor({ batches, blobs });
  const workerConnection = createRedis(config.REDIS_URL, "worker", log, "decoder-worker");
  const workers = await startStageWorkers({
    stage: "decode",
    prefix: config.QUEUE_PREFIX,
    connection: workerConnection,
    queueName: (tenant) => stageQueue("decode", tenant),
    tenants: async () => {
      const tenants = await redis.smembers(redisKeys(config.QUEUE_PREFIX).tenants());
      for (const tenant of tenants) decodeQueueOf(tenant);
      return tenants;
    },
    concurrency: config.CONCURRENCY,
    lockDurationMs: config.LOCK_DURATION_MS,
    stalledIntervalMs: config.STALLED_INTERVAL_MS,
    parse: (name, data) =>
      name === "shard" ? { shard: decodeShardTaskSchema.parse(data) } : name === "finalize" ? { finalize: finalizeTaskSchema.parse(data) } : { job: decodeTaskSchema.parse(data) },
    process: (task) => (task.shard ? decodeShard(task.shard) : task.finalize ? finalize(task.finalize) : decodeJob(task.job!)),
    onFinalFailure: async (data, err) => {
      await markFailed(store, data, "DECODING_FAILED", err);
      const d = data as { tenant: string; batchId: string };
      if (await markShardFailed(batches, data)) await decodeQueueOf(d.tenant).add("finalize", { tenant: d.tenant, batchId: d.batchId }, jobOptions({ jobId: finalizeJobId(d.batchId) }));
    },
    registry,
    log,
  });
  registerBacklogMetrics(registry, queues.list);
  health.ready = true;
  log.info({ versions: [...decoders.keys()], httpPort: ops.port }, "decoder worker started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("mark not ready", () => (health.ready = false));
  // Decodes not done near the deadline are handed back to the queue for another worker.
  shutdown.add("drain workers", () => workers.close({ handBackAfterMs: handBackAfterMs(config.DRAIN_DEADLINE_MS) }));
  shutdown.add("close queues", () => queues.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), workerConnection.quit()]));
  shutdown.add("close ops server", () => ops.close());
  shutdown.installSignalHandlers();
}

main().catch(fatal(createLogger("decoder-worker")));
