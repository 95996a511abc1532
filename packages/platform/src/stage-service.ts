/**
 * What every stage service (prior worker, decoder worker) wires the same way around its own
 * processors: the config of its stage workers, their options, and the drain that hands back what
 * is still running near the deadline.
 */
import type { ConnectionOptions } from "bullmq";
import type { Redis } from "ioredis";
import { z } from "zod";
import { redisKeys } from "@rebeca/contracts";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Stage } from "@rebeca/contracts";
import { env, workClassConfigSchema } from "./config.js";
import { startOpsServer } from "./http.js";
import { createMetricsRegistry } from "./metrics.js";
import { lowerProcessPriority } from "./priority.js";
import { createRedis, waitReady } from "./redis.js";
import { createQueueCache, registerBacklogMetrics, type QueueCache } from "./queues.js";
import { createShutdown } from "./shutdown.js";
import { startTracing } from "./tracing.js";
import { handBackAfterMs, type StageWorkerOptions, type StageWorkers } from "./stage-worker.js";

/** Config of a stage worker process: what it serves, at which priority, and its BullMQ lock policy. */
export const stageWorkerConfigSchema = workClassConfigSchema.extend({
  /** BullMQ lock duration (ms); keep it above the p99 time of one job. */
  LOCK_DURATION_MS: env.int(120_000),
  /** How often (ms) jobs of dead workers are looked for and handed out again. */
  STALLED_INTERVAL_MS: env.int(30_000),
});
export type StageWorkerConfig = z.infer<typeof stageWorkerConfigSchema> & { QUEUE_PREFIX: string; CONCURRENCY: number };

/**
 * The options of `startStageWorkers` that come from config and connections: queues under the
 * prefix, tenants from the registry of tenants that have queues, concurrency and lock policy.
 */
export function stageWorkerSettings(
  config: StageWorkerConfig,
  redis: Redis,
  connection: ConnectionOptions,
): Pick<StageWorkerOptions<Stage>, "prefix" | "connection" | "classes" | "tenants" | "concurrency" | "lockDurationMs" | "stalledIntervalMs"> {
  return {
    prefix: config.QUEUE_PREFIX,
    connection,
    classes: config.WORK_CLASSES,
    tenants: () => redis.smembers(redisKeys(config.QUEUE_PREFIX).tenants()),
    concurrency: config.CONCURRENCY,
    lockDurationMs: config.LOCK_DURATION_MS,
    stalledIntervalMs: config.STALLED_INTERVAL_MS,
  };
}

/**
 * Drains stage workers: stops taking jobs and waits for running ones; those not done when a
 * quarter of the drain deadline (at most 5 s) is left go back to the queue for another worker.
 */
export const drainStageWorkers = (workers: StageWorkers | undefined, drainDeadlineMs: number): Promise<void> =>
  workers?.close({ handBackAfterMs: handBackAfterMs(drainDeadlineMs) }) ?? Promise.resolve();

/** A stage service's composition (prior worker, decoder worker), as its entry point drives it. */
export interface StageService {
  /** Model versions served (logged at start). */
  versions: string[];
  /** Starts taking jobs. */
  start(): Promise<void>;
  /** Stops taking jobs and hands back what is still running near the drain deadline. */
  drain(): Promise<void>;
  /** Stops the model threads (cancelling runs a hand-back left going). */
  close(): Promise<void>;
}

/** What {@link runStageService} hands the composition. */
export interface StageServiceDeps<C> {
  config: C;
  /** Commands: stores and queue producers. */
  redis: Redis;
  /** The BullMQ workers' connection (blocking commands). */
  workerConnection: Redis;
  /** The job catalog's queues (their backlog exported; closed after the service). */
  queues: QueueCache;
  registry: Registry;
  log: Logger;
  /** A model thread died after start-up: logs it and exits, so the process is replaced. */
  onThreadDeath: (err: Error) => void;
}

type StageServiceConfig = StageWorkerConfig & { REDIS_URL: string; HTTP_HOST: string; HTTP_PORT: number; DRAIN_DEADLINE_MS: number };

/**
 * The entry point of a stage service, the same for every stage: lowers the CPU priority (before any
 * thread starts, so model threads and onnxruntime's pools inherit it), starts the ops server,
 * connects to Redis, opens the catalog's queues, creates and starts the composition, and installs
 * the shutdown: not ready → drain → model threads → queues → Redis → ops server. Logs `<label> started` when it takes jobs.
 */
export async function runStageService<C extends StageServiceConfig>(o: {
  service: string;
  label: string;
  config: C;
  log: Logger;
  create: (deps: StageServiceDeps<C>) => Promise<StageService>;
  /**
   * Pipeline the store connection's commands: those issued in one turn of the event loop (the job
   * records, transitions and hand-offs of the jobs one merged model call finished) go to Redis in
   * one write, and while one such write awaits its replies the next turn's commands gather behind
   * it. For stages whose per-job Redis work rivals their model work. @default false
   */
  pipelineStore?: boolean;
}): Promise<void> {
  const { config, log } = o;
  if (config.PROCESS_NICE > 0) lowerProcessPriority(config.PROCESS_NICE);
  const tracing = startTracing(o.service);
  const health = { ready: false };
  const registry = createMetricsRegistry(o.service);
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });
  const redis = createRedis(config.REDIS_URL, "worker", log, `${o.service}-store`, { enableAutoPipelining: o.pipelineStore ?? false });
  const workerConnection = createRedis(config.REDIS_URL, "worker", log, o.service);
  await waitReady(redis);
  const onThreadDeath = (err: Error) => {
    // The jobs it held are retried; a process without its model instance must be replaced.
    log.fatal({ err }, "model thread died");
    process.exit(1);
  };
  const queues = createQueueCache(redis, config.QUEUE_PREFIX);
  registerBacklogMetrics(registry, queues.list);
  const service = await o.create({ config, redis, workerConnection, queues, registry, log, onThreadDeath });
  await service.start();
  health.ready = true;
  log.info(
    { versions: service.versions, httpPort: ops.port, concurrency: config.CONCURRENCY, classes: config.WORK_CLASSES, nice: config.PROCESS_NICE },
    `${o.label} started`,
  );

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("mark not ready", () => (health.ready = false));
  shutdown.add("drain workers", () => service.drain());
  shutdown.add("stop model threads", () => service.close());
  shutdown.add("close queues", () => queues.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), workerConnection.quit()]));
  shutdown.add("close ops server", () => ops.close());
  shutdown.add("flush spans", () => tracing.shutdown());
  shutdown.installSignalHandlers();
}
