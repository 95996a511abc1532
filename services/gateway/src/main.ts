#!/usr/bin/env node
import { redisKeys, STAGES, WORK_CLASSES, type Stage, type WorkClass } from "@rebeca/contracts";
import { createBatchStore, createJobStore } from "@rebeca/jobstore";
import { createBlobStore } from "@rebeca/storage";
import { createBatchService } from "./batch-service.js";
import {
  createJobOutcomeCounter,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createShutdown,
  fatal,
  loadConfig,
  createQueueCache,
  registerBacklogMetrics,
  startOpsServer,
  waitReady,
} from "@rebeca/platform";
import { createAuthenticator } from "./auth.js";
import { createCallbackGuard } from "./callback-guard.js";
import { gatewayConfigSchema, readApiKeys } from "./config.js";
import { createEventHub } from "./event-hub.js";
import { createGatewayMetrics } from "./metrics.js";
import { loadModelCatalog } from "./models.js";
import { startGrpcServer } from "./server.js";
import { createJobService } from "./service.js";
import { createPriorSink } from "./sink.js";
import { createAdmission } from "./admission.js";
import { startConsole } from "./console/server.js";

async function main() {
  const config = loadConfig(gatewayConfigSchema);
  const log = createLogger("gateway", config.LOG_LEVEL);
  const health = { ready: false };
  const registry = createMetricsRegistry("gateway");

  const models = await loadModelCatalog(config.MODELS_DIR);
  if (!models.has(config.DEFAULT_MODEL_VERSION)) {
    throw new Error(`DEFAULT_MODEL_VERSION "${config.DEFAULT_MODEL_VERSION}" has no manifest in ${config.MODELS_DIR} (found: ${[...models.keys()].join(", ") || "none"})`);
  }
  const apiKeys = readApiKeys(config);
  const authenticate = createAuthenticator(apiKeys);

  const redis = createRedis(config.REDIS_URL, "producer", log, "gateway");
  await waitReady(redis);
  const queueConnection = createRedis(config.REDIS_URL, "producer", log, "gateway-queue");
  await waitReady(queueConnection);
  const queues = createQueueCache(queueConnection, config.QUEUE_PREFIX);
  const queueOf = (stage: Stage, workClass: WorkClass = "interactive") => (tenant: string) => queues.get(stage, tenant, workClass);
  const tenants = [...new Set(apiKeys.map((k) => k.tenant))];
  // Workers open a worker per tenant queue from this set; the metrics cover every tenant's stages.
  await redis.sadd(redisKeys(config.QUEUE_PREFIX).tenants(), ...tenants);
  for (const tenant of tenants) for (const stage of STAGES) for (const c of WORK_CLASSES) queueOf(stage, c)(tenant);
  registerBacklogMetrics(registry, queues.list);

  const store = createJobStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN, onFinished: createJobOutcomeCounter(registry) });
  const hub = createEventHub({ store, log, maxBuffered: config.WATCH_BUFFER_EVENTS, blockingRedis: () => createRedis(config.REDIS_URL, "worker", log, "gateway-events") });
  const callbackGuard = createCallbackGuard(config.CALLBACK_ALLOW_HOSTS);
  const admission = createAdmission({
    queuesOf: (tenant) => WORK_CLASSES.map((c) => queueOf("prior", c)(tenant)),
    redis,
    maxBacklog: config.MAX_PRIOR_BACKLOG,
    submissionsPerSecond: config.SUBMISSIONS_PER_SECOND,
    redisMemoryBudgetBytes: config.REDIS_MEMORY_BUDGET_BYTES,
  });
  const metrics = createGatewayMetrics(registry);
  const service = createJobService({
    authenticate,
    store,
    sink: createPriorSink(queueOf("prior")),
    hub,
    models,
    defaultModel: config.DEFAULT_MODEL_VERSION,
    limits: { maxImagesPerJob: config.MAX_IMAGES_PER_JOB, maxGuidance: config.MAX_GUIDANCE, maxLabels: 16 },
    callbackGuard,
    admission,
    metrics,
    log,
    maxWatchersPerTenant: config.MAX_WATCHERS_PER_TENANT,
    watchBufferEvents: config.WATCH_BUFFER_EVENTS,
  });

  const batches = createBatchStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN });
  const blobs = await createBlobStore(config);
  const batchService = createBatchService({
    authenticate,
    batches,
    priorQueueOf: queueOf("prior", "batch"),
    decodeQueueOf: queueOf("decode", "batch"),
    blobs,
    bucket: config.S3_BUCKET,
    maxManifestBytes: config.MAX_MANIFEST_BYTES,
    models,
    defaultModel: config.DEFAULT_MODEL_VERSION,
    limits: { maxImagesPerJob: config.MAX_IMAGES_PER_JOB, maxGuidance: config.MAX_GUIDANCE, maxLabels: 16 },
    shardSize: config.SHARD_SIZE,
    maxUsersPerBatch: config.MAX_USERS_PER_BATCH,
    callbackGuard,
    admission,
    metrics,
    log,
  });
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });
  const grpc = await startGrpcServer({ host: config.GRPC_HOST, port: config.GRPC_PORT, protoDir: config.PROTO_DIR, service, batchService, maxMessageBytes: config.MAX_MESSAGE_BYTES });
  const consoleServer = config.CONSOLE_ENABLED
    ? await startConsole({
        host: config.CONSOLE_HOST,
        port: config.CONSOLE_PORT,
        keys: { apiKeys, adminKeys: config.CONSOLE_ADMIN_KEYS },
        redis,
        prefix: config.QUEUE_PREFIX,
        batches,
        blobs,
        queues: () => queues.list().map((q) => q.queue),
        sessionTtlSeconds: config.CONSOLE_SESSION_TTL_SECONDS,
        secureCookie: config.CONSOLE_SECURE_COOKIE,
        log,
      })
    : undefined;
  health.ready = true;
  log.info({ grpcPort: grpc.port, httpPort: ops.port, consolePort: consoleServer?.port ?? null, models: [...models.keys()] }, "gateway started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("mark not ready", () => (health.ready = false));
  shutdown.add("drain grpc", () => grpc.drain(Math.max(1000, config.DRAIN_DEADLINE_MS - 3000)));
  shutdown.add("close console", () => consoleServer?.close());
  shutdown.add("stop event tailers", () => hub.close());
  shutdown.add("close queues", () => queues.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), queueConnection.quit()]));
  shutdown.add("close ops server", () => ops.close());
  shutdown.installSignalHandlers();
}

main().catch(fatal(createLogger("gateway")));
