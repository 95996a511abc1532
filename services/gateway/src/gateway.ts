/**
 * The gateway's parts, built from its config and connections: job and batch stores, the event
 * hub, admission, and the two gRPC services over their queue sinks. main.ts opens the
 * connections and servers; everything between them is wired here.
 */
import type { Redis } from "ioredis";
import { redisKeys, STAGES, WORK_CLASSES } from "@rebeca/contracts";
import { createBatchStore, createDeadlineIndex, createJobStore, createRetentionIndex } from "@rebeca/jobstore";
import { backlogOf, createJobOutcomeCounter, createQueueCache, createRedis, registerBacklogMetrics, type Logger, type Registry } from "@rebeca/platform";
import { createAcceptedVersions, createPolicyStore } from "@rebeca/registry";
import type { BlobStore } from "@rebeca/storage";
import { createAdmission } from "./admission.js";
import { createAuthenticator, type ApiKeyEntry } from "./auth.js";
import { createBatchService } from "./batch-service.js";
import { createCallbackGuard } from "./callback-guard.js";
import type { ConsoleDeps } from "./console/server.js";
import { requestLimits, type GatewayConfig } from "./config.js";
import { createEventHub } from "./event-hub.js";
import type { IntakeDeps } from "./intake.js";
import { createJobService } from "./job-service.js";
import { createDataService } from "./data-service.js";
import { createBatchImageQuota } from "./batch-quota.js";
import { createQuotaCheck, parseTenantQuotas } from "./quota.js";
import { createErasureStore, createImageReservations, createUsageStore, createUserIndex } from "@rebeca/userdata";
import { createGatewayMetrics } from "./metrics.js";
import { createModelRouter } from "./model-routing.js";
import { createModelService } from "./model-service.js";
import type { ModelInfo } from "./validate.js";
import { tenantOutputTtls } from "./windows.js";

export interface GatewayParts {
  config: GatewayConfig;
  apiKeys: ApiKeyEntry[];
  /** Versions servable now; the registry client adds published ones as they are fetched and verified. */
  models: ReadonlyMap<string, ModelInfo>;
  /** The embedded versions (MODELS_DIR) among `models`. */
  embedded?: ReadonlySet<string>;
  /** Versions refused by the registry client, with why. */
  refusedModels?: () => ReadonlyMap<string, string>;
  /** Producer connection (fails fast) for records, admission and events. */
  redis: Redis;
  /** Producer connection the queues share. */
  queueConnection: Redis;
  blobs: BlobStore;
  registry: Registry;
  log: Logger;
}

/**
 * Opens every tenant's stage queues (so backlog metrics cover them before the first request) and
 * registers the tenants for the workers, then builds both services.
 */
export async function createGateway({ config, apiKeys, models, embedded, refusedModels, redis, queueConnection, blobs, registry, log }: GatewayParts) {
  const queues = createQueueCache(queueConnection, config.QUEUE_PREFIX);
  const tenants = [...new Set(apiKeys.map((k) => k.tenant))];
  // Workers open a worker per tenant queue from this set; the metrics cover every tenant's stages.
  await redis.sadd(redisKeys(config.QUEUE_PREFIX).tenants(), ...tenants);
  for (const tenant of tenants) for (const stage of STAGES) for (const c of WORK_CLASSES) queues.get(stage, tenant, c);
  registerBacklogMetrics(registry, queues.list);

  const retention = { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN };
  const store = createJobStore(redis, { ...retention, onFinished: createJobOutcomeCounter(registry) });
  const batches = createBatchStore(redis, retention);
  const usage = createUsageStore(redis, config.QUEUE_PREFIX);
  const quotas = parseTenantQuotas(config.TENANT_QUOTAS);
  // Today's images for the quota: made, plus reserved by running batches and not made yet.
  const reservations = createImageReservations(redis, config.QUEUE_PREFIX);
  const hub = createEventHub({
    store,
    log,
    maxBuffered: config.WATCH_BUFFER_EVENTS,
    blockingRedis: () => createRedis(config.REDIS_URL, "worker", log, "gateway-events"),
  });
  const shared = {
    authenticate: createAuthenticator(apiKeys),
    metrics: createGatewayMetrics(registry),
    log,
  };
  const policies = createPolicyStore({ redis, redisPrefix: config.QUEUE_PREFIX, defaultStable: config.DEFAULT_MODEL_VERSION });
  const router = createModelRouter({ policies, models, registry });
  const intake: IntakeDeps = {
    models,
    defaultModel: config.DEFAULT_MODEL_VERSION,
    route: router,
    noteVersion: createAcceptedVersions(redis, config.QUEUE_PREFIX).note,
    limits: requestLimits(config),
    callbackGuard: createCallbackGuard(config.CALLBACK_ALLOW_HOSTS),
    outputTtlOf: tenantOutputTtls(config.TENANT_OUTPUT_TTL, config.OUTPUT_TTL),
    retention: createRetentionIndex(redis, config.QUEUE_PREFIX),
    deadlines: createDeadlineIndex(redis, config.QUEUE_PREFIX),
    admission: createAdmission({
      queuesOf: (tenant) => WORK_CLASSES.map((c) => queues.get("prior", tenant, c)),
      redis,
      maxBacklog: config.MAX_PRIOR_BACKLOG,
      submissionsPerSecond: config.SUBMISSIONS_PER_SECOND,
      redisMemoryBudgetBytes: config.REDIS_MEMORY_BUDGET_BYTES,
    }),
    quota: createQuotaCheck(quotas, {
      imagesToday: (tenant) => reservations.used(tenant),
      activeBatches: async (tenant) => (await batches.list(tenant, 100)).records.filter((b) => b.state === "receiving" || b.state === "running").length,
      backlog: async (tenant) => (await Promise.all(WORK_CLASSES.map((c) => backlogOf(queues.get("prior", tenant, c))))).reduce((sum, b) => sum + b.total, 0),
    }),
  };
  const jobService = createJobService({
    ...shared,
    ...intake,
    store,
    jobs: queues,
    unqueue: async (tenant, jobId) => (await queues.queueOf("sample", tenant).remove(jobId)) === 1,
    userIndex: createUserIndex(redis, config.QUEUE_PREFIX),
    hub,
    maxWatchersPerTenant: config.MAX_WATCHERS_PER_TENANT,
    watchBufferEvents: config.WATCH_BUFFER_EVENTS,
  });
  const batchService = createBatchService({
    ...shared,
    ...intake,
    batchRouting: router,
    batches,
    jobs: queues,
    blobs,
    bucket: config.S3_BUCKET,
    maxManifestBytes: config.MAX_MANIFEST_BYTES,
    shardSize: config.SHARD_SIZE,
    maxUsersPerBatch: config.MAX_USERS_PER_BATCH,
    batchImageQuota: createBatchImageQuota(quotas, reservations),
  });
  const modelService = createModelService({
    ...shared,
    policies,
    redis,
    redisPrefix: config.QUEUE_PREFIX,
    models,
    embedded: embedded ?? new Set(models.keys()),
    refused: refusedModels ?? (() => new Map()),
  });
  const dataService = createDataService({
    ...shared,
    erasures: createErasureStore(redis, config.QUEUE_PREFIX),
    usage,
    jobs: queues,
    blobs,
    bucket: config.S3_BUCKET,
    maxManifestBytes: config.MAX_MANIFEST_BYTES,
    callbackGuard: intake.callbackGuard,
  });
  return { jobService, batchService, modelService, dataService, batches, hub, queues };
}

/** The console's settings and parts (it serves on its own admin port; see console/server.ts). */
export function consoleOptions(
  config: GatewayConfig,
  parts: Pick<GatewayParts, "apiKeys" | "redis" | "blobs" | "log"> & Pick<Awaited<ReturnType<typeof createGateway>>, "batches" | "queues">,
): ConsoleDeps {
  return {
    host: config.CONSOLE_HOST,
    port: config.CONSOLE_PORT,
    keys: { apiKeys: parts.apiKeys, adminKeys: config.CONSOLE_ADMIN_KEYS },
    redis: parts.redis,
    prefix: config.QUEUE_PREFIX,
    batches: parts.batches,
    blobs: parts.blobs,
    queues: () => parts.queues.list().map((q) => q.queue),
    sessionTtlSeconds: config.CONSOLE_SESSION_TTL_SECONDS,
    secureCookie: config.CONSOLE_SECURE_COOKIE,
    log: parts.log,
  };
}
