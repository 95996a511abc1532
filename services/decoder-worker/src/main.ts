#!/usr/bin/env node
import { redisKeys } from "@rebeca/contracts";
import { createBatchStore, createJobStore } from "@rebeca/jobstore";
import { createFinalizeProcessor, createShardDecodeProcessor } from "./shard-processor.js";
import { fairUploads } from "./fair-blobs.js";
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
import { decoderWorkerConfigSchema } from "./config.js";
import { latentOverrides, loadDecoders } from "./models.js";
import { createBatchingDecoder } from "./batching-decoder.js";
import { createThreadedDecoders } from "./threaded-decoders.js";
import { resolveModelVersions } from "@rebeca/inference";
import { createDecodeProcessor } from "./processor.js";

async function main() {
  const config = loadConfig(decoderWorkerConfigSchema);
  const log = createLogger("decoder-worker", config.LOG_LEVEL);
  // Before any thread starts, so onnxruntime's pools inherit it.
  if (config.PROCESS_NICE > 0) lowerProcessPriority(config.PROCESS_NICE);
  const health = { ready: false };
  const registry = createMetricsRegistry("decoder-worker");
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });

  const versions = await resolveModelVersions(config.MODELS_DIR, config.MODEL_VERSIONS);
  const session = { providers: config.ORT_PROVIDERS as never, requireGpu: config.REQUIRE_GPU, intraOpThreads: config.ORT_INTRA_OP_THREADS, interOpThreads: config.ORT_INTER_OP_THREADS };
  // Decoding on threads keeps model steps from queueing behind the event loop's PNG/S3/Redis work.
  const threadInit = { modelsDir: config.MODELS_DIR, versions, session, latent: latentOverrides(config) };
  const threaded = config.DECODE_THREADS
    ? await createThreadedDecoders(threadInit, config.DECODE_LANES, log, (err) => {
        // The jobs it held are retried; a process without its model instance must be replaced.
        log.fatal({ err }, "decoder thread died");
        process.exit(1);
      })
    : undefined;
  const decoders = threaded?.decoders ?? (await loadDecoders(config.MODELS_DIR, versions, session, log, latentOverrides(config)));
  const blobs = await createBlobStore(config);
  const redis = createRedis(config.REDIS_URL, "worker", log, "decoder-store");
  await waitReady(redis);
  const store = createJobStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN, onFinished: createJobOutcomeCounter(registry) });
  const queues = createQueueCache(redis, config.QUEUE_PREFIX);
  const imagesTotal = new Counter({ name: "rebeca_decoder_images_total", help: "Images decoded and stored", registers: [registry] });

  const lanes = createFairLanes({ lanes: config.DECODE_LANES, weight: weightOf(config.TENANT_WEIGHTS) });
  // Triton's pair: the average batch is inferences / executions.
  const batchInferences = new Counter({ name: "rebeca_decoder_batch_inferences_total", help: "Images decoded through the micro-batcher (single jobs)", labelNames: ["model_version"], registers: [registry] });
  const batchExecutions = new Counter({ name: "rebeca_decoder_batch_executions_total", help: "Decoder calls the micro-batcher made; inferences / executions is the average batch", labelNames: ["model_version"], registers: [registry] });
  const batchQueue = new Histogram({ name: "rebeca_decoder_batch_queue_seconds", help: "Time a single job waited in the micro-batcher before its decode started", labelNames: ["model_version"], buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
  if (config.DECODE_MAX_BATCH > 1) {
    for (const [version, loaded] of decoders) {
      loaded.batching = createBatchingDecoder(loaded.decoder, loaded.embeddingDim, {
        maxBatch: config.DECODE_MAX_BATCH,
        maxWaitMs: config.DECODE_MAX_WAIT_MS,
        concurrency: config.DECODE_LANES,
        acquire: (tenant, images) => lanes.acquire(tenant, images),
        onExecution: (s) => {
          batchInferences.inc({ model_version: version }, s.items);
          batchExecutions.inc({ model_version: version });
          for (const ms of s.queueMs) batchQueue.observe({ model_version: version }, ms / 1000);
          if (s.split) log.warn({ version, requests: s.requests }, "batched decode failed; retrying its jobs one by one");
        },
      });
    }
  }
  const batches = createBatchStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN });
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
    jobs: queues,
    observe: (n) => imagesTotal.inc(n),
  });
  const finalize = createFinalizeProcessor({ batches, blobs });
  const workerConnection = createRedis(config.REDIS_URL, "worker", log, "decoder-worker");
  const workers = await startStageWorkers({
    stage: "decode",
    prefix: config.QUEUE_PREFIX,
    connection: workerConnection,
    classes: config.WORK_CLASSES,
    tenants: async () => {
      const tenants = await redis.smembers(redisKeys(config.QUEUE_PREFIX).tenants());
      for (const tenant of tenants) for (const c of config.WORK_CLASSES) queues.get("decode", tenant, c);
      return tenants;
    },
    concurrency: config.CONCURRENCY,
    lockDurationMs: config.LOCK_DURATION_MS,
    stalledIntervalMs: config.STALLED_INTERVAL_MS,
    handlers: { decode: (task) => decodeJob(task), decodeShard: (task) => decodeShard(task), finalizeBatch: (task) => finalize(task) },
    onFinalFailure: createFailureRouter({ code: "DECODING_FAILED", jobs: store, batches, sink: queues }),
    registry,
    log,
  });
  registerBacklogMetrics(registry, queues.list);
  health.ready = true;
  log.info({ versions: [...decoders.keys()], httpPort: ops.port, classes: config.WORK_CLASSES, nice: config.PROCESS_NICE }, "decoder worker started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("mark not ready", () => (health.ready = false));
  // Decodes not done near the deadline are handed back to the queue for another worker.
  shutdown.add("drain workers", () => workers.close({ handBackAfterMs: handBackAfterMs(config.DRAIN_DEADLINE_MS) }));
  shutdown.add("close queues", () => queues.close());
  if (threaded) shutdown.add("stop decoder threads", () => threaded.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), workerConnection.quit()]));
  shutdown.add("close ops server", () => ops.close());
  shutdown.installSignalHandlers();
}

main().catch(fatal(createLogger("decoder-worker")));
