#!/usr/bin/env node
/** Monitor entry point: wiring only (see monitor.ts). */
import { createBlobStore, parseS3Uri } from "@rebeca/storage";
import { createDeadlineIndex, createOutputRecords, createRetentionIndex, createStores } from "@rebeca/jobstore";
import {
  createFinalizeProcessor,
  createJobOutcomeCounter,
  createLogger,
  createMetricsRegistry,
  createQueueCache,
  createRedis,
  createShutdown,
  fatal,
  loadConfig,
  startOpsServer,
  waitReady,
} from "@rebeca/platform";
import { createPolicyStore, createRegistrySource } from "@rebeca/registry";
import { createCanaryWatch } from "./canary-watch.js";
import { createDeadlineReaper } from "./deadline-reaper.js";
import { canarySettingsOf, monitorConfigSchema, monitorSettingsOf } from "./config.js";
import { createScoringDirs } from "./model-dirs.js";
import { createMonitor } from "./monitor.js";
import { createRetentionSweeper } from "./retention-sweeper.js";
import { createRollbackNotice } from "./rollback-notice.js";
import { finishedJobOf } from "./sampling.js";
import { createScorer } from "./scorer.js";
import { createUnqueue } from "./unqueue.js";

const bootLog = createLogger("monitor");

async function main(): Promise<void> {
  const config = loadConfig(monitorConfigSchema);
  const log = createLogger("monitor", config.LOG_LEVEL);
  log.info({ sampleRate: config.MONITOR_SAMPLE_RATE, references: config.MONITOR_REFERENCE_USERS, modelsDir: config.MODELS_DIR }, "starting");
  const blobs = await createBlobStore(config);
  // Outputs are referenced by s3:// URI; the bucket is the configured one.
  const read = (uri: string) => blobs.get(parseS3Uri(uri).key);
  const redis = createRedis(config.REDIS_URL, "worker", log, "monitor");
  const blockingRedis = createRedis(config.REDIS_URL, "worker", log, "monitor-events");
  await waitReady(redis);
  const registry = createMetricsRegistry("monitor");
  const health = { ready: false };
  const canary = canarySettingsOf(config);
  const watch = config.MONITOR_CANARY_ROLLBACK
    ? createCanaryWatch({
        // The default stable version only matters to tenants without a policy, which have no canary to judge.
        policies: createPolicyStore({ redis, redisPrefix: config.QUEUE_PREFIX, defaultStable: "" }),
        windowMs: canary.windowMs,
        refreshMs: canary.refreshMs,
        judge: canary.judge,
        promoteAfterMs: canary.promoteAfterMs,
        onPromoted: (tenant, before) => log.info({ tenant, candidate: before.candidate, stable: before.stable }, "canary promoted after a clean bake"),
        onRolledBack: createRollbackNotice({ redis, prefix: config.QUEUE_PREFIX, callbacks: canary.callbacks, registry, log }),
      })
    : undefined;
  const monitor = createMonitor({
    ...monitorSettingsOf(config),
    redis,
    blockingRedis,
    scorer: createScorer({
      locate: createScoringDirs({
        modelsDir: config.MODELS_DIR,
        source: createRegistrySource({ config, redis, blobs, service: "monitor", metrics: registry, log })?.source,
        worldVersion: config.MONITOR_WORLD_VERSION,
      }),
      references: config.MONITOR_REFERENCE_USERS,
      read,
    }),
    readKey: (key) => blobs.get(key),
    registry,
    log,
    ...(watch
      ? {
          onScored: (task, own, others) => watch.observeScores(task.tenant, task.modelVersion, own, others),
          onEvent: async (tenant, fields) => {
            const job = finishedJobOf(fields);
            if (job) await watch.observeJob(tenant, job.modelVersion, job.failed);
          },
        }
      : {}),
  });
  // The sweeper rides with the monitor: both are background readers of Redis and S3 with no model
  // on the serving path, and a sweep is idempotent, so every replica may run it.
  const sweeper = createRetentionSweeper({
    index: createRetentionIndex(redis, config.QUEUE_PREFIX),
    records: createOutputRecords(redis, config.QUEUE_PREFIX),
    blobs,
    registry,
    log,
    maxOwners: config.RETENTION_SWEEP_MAX_OWNERS,
    intervalMs: config.RETENTION_SWEEP_INTERVAL_MS,
  });
  // The deadline reaper rides here too: it must run where no stage worker may be running, and it
  // only reads indexes, removes queued jobs and moves records, all idempotent, so replicas agree.
  const { store, batches } = createStores(redis, {
    prefix: config.QUEUE_PREFIX,
    retentionSeconds: config.JOB_RETENTION_SECONDS,
    eventsMaxLen: config.EVENTS_MAX_LEN,
    onFinished: createJobOutcomeCounter(registry),
  });
  const queues = createQueueCache(redis, config.QUEUE_PREFIX);
  const reaper = createDeadlineReaper({
    index: createDeadlineIndex(redis, config.QUEUE_PREFIX),
    jobs: store,
    batches,
    unqueue: createUnqueue(queues),
    finalize: createFinalizeProcessor({ batches, blobs }),
    registry,
    log,
    maxItems: config.DEADLINE_SWEEP_MAX_ITEMS,
    intervalMs: config.DEADLINE_SWEEP_INTERVAL_MS,
    recheckMs: config.DEADLINE_RECHECK_MS,
  });
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });
  await monitor.start();
  if (config.RETENTION_SWEEP_INTERVAL_MS > 0) sweeper.start();
  if (config.DEADLINE_SWEEP_INTERVAL_MS > 0) reaper.start();
  health.ready = true;
  log.info({ httpPort: ops.port }, "monitor started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("not ready", () => (health.ready = false));
  shutdown.add("stop scoring", () => monitor.stop());
  shutdown.add("stop retention sweeps", () => sweeper.stop());
  shutdown.add("stop deadline sweeps", () => reaper.stop());
  shutdown.add("close queues", () => queues.close());
  shutdown.add("close ops server", () => ops.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), blockingRedis.quit()]));
  shutdown.installSignalHandlers();
}

main().catch(fatal(bootLog));
