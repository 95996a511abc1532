#!/usr/bin/env node
import { decodeTaskSchema, QUEUES } from "@rebeca/contracts";
import { createJobStore, markFailed } from "@rebeca/jobstore";
import {
  Counter,
  createJobOutcomeCounter,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createShutdown,
  createStageWorker,
  fatal,
  loadConfig,
  openQueue,
  registerBacklogMetrics,
  startOpsServer,
  waitReady,
} from "@rebeca/platform";
import { createBlobStore } from "@rebeca/storage";
import { decoderWorkerConfigSchema } from "./config.js";
import { listVersions, loadDecoders } from "./models.js";
import { createDecodeProcessor } from "./processor.js";

async function main() {
  const config = loadConfig(decoderWorkerConfigSchema);
  const log = createLogger("decoder-worker", config.LOG_LEVEL);
  const health = { ready: false };
  const registry = createMetricsRegistry("decoder-worker");
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });

  const versions = config.MODEL_VERSIONS.length > 0 ? config.MODEL_VERSIONS : await listVersions(config.MODELS_DIR);
  const decoders = await loadDecoders(
    config.MODELS_DIR,
    versions,
    { providers: config.ORT_PROVIDERS as never, requireGpu: config.REQUIRE_GPU, intraOpThreads: config.ORT_INTRA_OP_THREADS, interOpThreads: config.ORT_INTER_OP_THREADS },
    log,
  );
  const blobs = await createBlobStore(config);
  const redis = createRedis(config.REDIS_URL, "worker", log, "decoder-store");
  await waitReady(redis);
  const store = createJobStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, onFinished: createJobOutcomeCounter(registry) });
  const decodeQueue = openQueue(QUEUES.decode, redis, config.QUEUE_PREFIX);
  registerBacklogMetrics(registry, [decodeQueue]);
  const imagesTotal = new Counter({ name: "rebeca_decoder_images_total", help: "Images decoded and stored", registers: [registry] });

  const workerConnection = createRedis(config.REDIS_URL, "worker", log, "decoder-worker");
  const worker = createStageWorker({
    queue: QUEUES.decode,
    prefix: config.QUEUE_PREFIX,
    connection: workerConnection,
    concurrency: config.CONCURRENCY,
    lockDurationMs: config.LOCK_DURATION_MS,
    parse: (data) => decodeTaskSchema.parse(data),
    process: createDecodeProcessor({ store, decoders, blobs, observe: (n) => imagesTotal.inc(n) }),
    onFinalFailure: (data, err) => markFailed(store, data, "DECODING_FAILED", err),
    registry,
    log,
  });
  health.ready = true;
  log.info({ versions: [...decoders.keys()], httpPort: ops.port }, "decoder worker started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("mark not ready", () => (health.ready = false));
  shutdown.add("drain worker", () => worker.close());
  shutdown.add("close queue", () => decodeQueue.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), workerConnection.quit()]));
  shutdown.add("close ops server", () => ops.close());
  shutdown.installSignalHandlers();
}

main().catch(fatal(createLogger("decoder-worker")));
