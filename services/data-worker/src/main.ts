#!/usr/bin/env node
/**
 * Data worker entry point: consumes the "data" queue (user-data erasures). Wiring only; the
 * erasure itself is @rebeca/userdata.
 */
import { Queue, Worker, UnrecoverableError } from "bullmq";
import { eraseUsersTaskSchema, QUEUES } from "@rebeca/contracts";
import { createJobStore } from "@rebeca/jobstore";
import {
  Counter,
  createLogger,
  createMetricsRegistry,
  createRedis,
  createShutdown,
  fatal,
  loadConfig,
  registerBacklogMetrics,
  startOpsServer,
  waitReady,
} from "@rebeca/platform";
import { eraseUsersFromRegistry } from "@rebeca/registry";
import { createBlobStore } from "@rebeca/storage";
import { createEraser, createErasureRunner, createErasureStore } from "@rebeca/userdata";
import { dataWorkerConfigSchema } from "./config.js";

async function main() {
  const config = loadConfig(dataWorkerConfigSchema);
  const log = createLogger("data-worker", config.LOG_LEVEL);
  const redis = createRedis(config.REDIS_URL, "worker", log, "data-worker");
  const workerConnection = createRedis(config.REDIS_URL, "worker", log, "data-worker-queue");
  await Promise.all([waitReady(redis), waitReady(workerConnection)]);
  const blobs = await createBlobStore(config);
  const registry = createMetricsRegistry("data-worker");
  const erasedUsers = new Counter({ name: "rebeca_data_erased_users_total", help: "Users erased (DeleteUserData), by chunk recorded", registers: [registry] });

  const queues = new Map<string, Queue>();
  const queue = (name: string) => {
    let q = queues.get(name);
    if (!q) queues.set(name, (q = new Queue(name, { connection: redis, prefix: config.QUEUE_PREFIX })));
    return q;
  };
  // The data queue's backlog, which KEDA scales this worker on (deploy/k8s/base/data-worker.yaml).
  registerBacklogMetrics(registry, () => [{ queue: queue(QUEUES.data), stage: QUEUES.data, tenant: "" }]);
  const store = createJobStore(redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS, eventsMaxLen: config.EVENTS_MAX_LEN });
  const erasures = createErasureStore(redis, config.QUEUE_PREFIX);
  const run = createErasureRunner({
    erasures,
    eraser: createEraser({
      redis,
      blobs,
      store,
      prefix: config.QUEUE_PREFIX,
      queue,
      // Every published version with the users loses their rows (a new revision each); none published, nothing read but the pointer hash.
      eraseFromModels: (userIds) =>
        eraseUsersFromRegistry({ blobs, redis, objectPrefix: config.REGISTRY_PREFIX, redisPrefix: config.QUEUE_PREFIX }, userIds, "data-worker"),
    }),
    chunkSize: config.ERASE_CHUNK_USERS,
    onChunk: (erasureId, users, cursor) => {
      erasedUsers.inc(users);
      log.info({ erasureId, users, cursor }, "erasure chunk done");
    },
  });
  const worker = new Worker(
    QUEUES.data,
    async (job) => {
      const parsed = eraseUsersTaskSchema.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`bad eraseUsers payload: ${parsed.error.message}`);
      return run(parsed.data);
    },
    {
      connection: workerConnection,
      prefix: config.QUEUE_PREFIX,
      concurrency: config.ERASE_CONCURRENCY,
      lockDuration: config.ERASE_LOCK_MS,
      stalledInterval: config.ERASE_LOCK_MS,
      // A killed worker's erasure is resumed, not failed: every chunk is idempotent.
      maxStalledCount: 100,
    },
  );
  worker.on("failed", (job, err) => {
    log.warn({ erasureId: job?.id, attempts: job?.attemptsMade, err: err.message }, "erasure attempt failed");
    // Out of attempts: the erasure says so instead of staying "running" forever.
    if (job?.id && job.attemptsMade >= (job.opts.attempts ?? 1))
      erasures
        .finish(job.id, "failed", new Date().toISOString(), err.message)
        .catch((e: unknown) => log.error({ err: e }, "could not record a failed erasure"));
  });
  worker.on("error", (err) => log.error({ err }, "data worker error"));
  const health = { ready: true };
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });
  log.info({ httpPort: ops.port }, "data worker started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("not ready", () => (health.ready = false));
  shutdown.add("drain worker", () => worker.close());
  shutdown.add("close queues", () => Promise.all([...queues.values()].map((q) => q.close())));
  shutdown.add("close ops server", () => ops.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), workerConnection.quit()]));
  shutdown.installSignalHandlers();
}

main().catch(fatal(createLogger("data-worker")));
