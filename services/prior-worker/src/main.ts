#!/usr/bin/env node
import { redisKeys } from "@rebeca/contracts";
import { createBatchStore, createJobStore } from "@rebeca/jobstore";
import { createShardProcessor } from "./shard-processor.js";
import { createDecodeHoldBack } from "./hold-back.js";
import {
  Counter,
  Histogram,
  createJobOutcomeCounter,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createShutdown,
  createFairLanes,
  createQueueCache,
  startStageWorkers,
  createFailureRouter,
  handBackAfterMs,
  weightOf,
  fatal,
  lowerProcessPriority,
  loadConfig,
  registerBacklogMetrics,
  startOpsServer,
  waitReady,
} from "@rebeca/platform";
import { createBlobStore } from "@rebeca/storage";
import { priorWorkerConfigSchema } from "./config.js";
import { resolveModelVersions } from "@rebeca/inference";
import { createThreadedBackend } from "./threaded-backend.js";
import { createPriorProcessor } from "./processor.js";


async function main() {
  const config = loadConfig(priorWorkerConfigSchema);
  const log = createLogger("prior-worker", config.LOG_LEVEL);
  // Before any thread starts, so sampler threads and onnxruntime's pools inherit it.
  if (config.PROCESS_NICE > 0) lowerProcessPriority(config.PROCESS_NICE);
  const health = { ready: false };
  const registry = createMetricsRegistry("prior-worker");
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });

  const versions = await resolveModelVersions(config.MODELS_DIR, config.MODEL_VERSIONS);
  const backend = await createThreadedBackend(
    {
      modelsDir: config.MODELS_DIR,
      versions,
      session: { providers: config.ORT_PROVIDERS as never, requireGpu: config.REQUIRE_GPU, intraOpThreads: config.ORT_INTRA_OP_THREADS, interOpThreads: config.ORT_INTER_OP_THREADS },
    },
    config.SAMPLING_THREADS,
    (info) => log.info(info, "prior model loaded"),
  );
  const blobs = await createBlobStore(config);

  const redis = createRedis(config.REDIS_URL, "worker", log, "prior-store");
  await waitReady(redis);
  const store = createJobStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN, onFinished: createJobOutcomeCounter(registry) });
  const queues = createQueueCache(redis, config.QUEUE_PREFIX);
  const batchDecodeQueueOf = (tenant: string) => queues.get("decode", tenant, "batch");
  registerBacklogMetrics(registry, queues.list);

  const batchRows = new Histogram({ name: "rebeca_prior_batch_rows", help: "Rows per ONNX prior run (2 x images: CFG)", buckets: [2, 4, 8, 16, 32, 64, 128, 256, 512], registers: [registry] });
  const embeddingsTotal = new Counter({ name: "rebeca_prior_embeddings_total", help: "Embeddings sampled", registers: [registry] });

  const lanes = createFairLanes({ lanes: config.SAMPLING_THREADS, weight: weightOf(config.TENANT_WEIGHTS) });
  const process = createPriorProcessor({
    store,
    backend,
    lanes,
    blobs,
    inlineEmbeddingsMaxBytes: config.INLINE_EMBEDDINGS_MAX_BYTES,
    jobs: queues,
    log,
    observe: (rows, n) => {
      batchRows.observe(rows);
      embeddingsTotal.inc(n);
    },
  });
  const batches = createBatchStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN });
  const holdBack = createDecodeHoldBack(batchDecodeQueueOf, config.DECODE_BACKLOG_LIMIT);
  const processShard = createShardProcessor({
    batches,
    backend,
    lanes,
    blobs,
    holdBack,
    chunkUsers: config.SHARD_CHUNK_USERS,
    jobs: queues,
    observe: (rows, n) => {
      batchRows.observe(rows);
      embeddingsTotal.inc(n);
    },
  });
  const workerConnection = createRedis(config.REDIS_URL, "worker", log, "prior-worker");
  const workers = await startStageWorkers({
    stage: "prior",
    prefix: config.QUEUE_PREFIX,
    connection: workerConnection,
    classes: config.WORK_CLASSES,
    tenants: () => redis.smembers(redisKeys(config.QUEUE_PREFIX).tenants()),
    concurrency: config.CONCURRENCY,
    lockDurationMs: config.LOCK_DURATION_MS,
    stalledIntervalMs: config.STALLED_INTERVAL_MS,
    handlers: { sample: (task) => process(task), sampleShard: (task) => processShard(task) },
    onFinalFailure: createFailureRouter({ code: "SAMPLING_FAILED", jobs: store, batches, sink: queues }),
    registry,
    log,
  });
  health.ready = true;
  log.info({ versions: [...backend.versions.keys()], httpPort: ops.port, concurrency: config.CONCURRENCY, classes: config.WORK_CLASSES, nice: config.PROCESS_NICE }, "prior worker started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("mark not ready", () => (health.ready = false));
  // close() waits for running jobs; those not done near the deadline are handed back to the queue
  // (another worker resumes them from their recorded state at once, no stalled-job wait).
  shutdown.add("drain workers", () => workers.close({ handBackAfterMs: handBackAfterMs(config.DRAIN_DEADLINE_MS) }));
  shutdown.add("stop sampler threads", () => backend.close());
  shutdown.add("close queues", () => queues.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), workerConnection.quit()]));
  shutdown.add("close ops server", () => ops.close());
  shutdown.installSignalHandlers();
}

main().catch(fatal(createLogger("prior-worker")));
