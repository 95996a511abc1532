/**
 * Composes the notifier from its parts: dispatcher (outbox → queue), delivery worker (queue →
 * HTTP), stores, metrics and admin routes. Main and the integration tests both use it.
 */
import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { redisKeys, type CallbackTask } from "@rebeca/contracts";
import { createQueueCache, registerBacklogMetrics, type Logger, type Registry } from "@rebeca/platform";
import type { ConnectionOptions } from "bullmq";
import type { Redis } from "ioredis";
import { createAdminRoutes } from "./admin.js";
import { createDeadLetterStore } from "./dead-letters.js";
import { listDeliveries, recordDelivery } from "./deliveries.js";
import { createDeliveryProcessor, type DeliveryEvent } from "./delivery.js";
import { createDispatcher } from "./dispatcher.js";
import { createEndpointStore } from "./endpoints.js";
import { createNotifierMetrics } from "./metrics.js";
import { createDeliveryWorker, createQueueSink, enqueueReplay } from "./queue.js";
import type { RetryPolicy } from "./schedule.js";
import { secretLookup, type TenantSecrets } from "./secrets.js";
import { createHttpSender, type CallbackSender } from "./sender.js";
import { parseAllowList } from "@rebeca/platform";

/** The subset of NotifierConfig the notifier reads (so tests can build it without env parsing). */
export interface NotifierSettings {
  QUEUE_PREFIX: string;
  CALLBACK_CONCURRENCY: number;
  CALLBACK_TIMEOUT_MS: number;
  CALLBACK_RETRY_SCALE: number;
  CALLBACK_RETRY_JITTER: number;
  CALLBACK_RETRY_AFTER_MAX_S: number;
  CALLBACK_ALLOW_HOSTS: string[];
  CALLBACK_DELIVERIES_TTL_S: number;
  ADMIN_TOKEN?: string | undefined;
  OUTBOX_GROUP: string;
  OUTBOX_CONSUMER: string;
  OUTBOX_BATCH: number;
  OUTBOX_BLOCK_MS: number;
  OUTBOX_CLAIM_IDLE_MS: number;
}

export interface NotifierDeps {
  config: NotifierSettings;
  secrets: TenantSecrets;
  /** Commands (stores, queue producer). */
  redis: Redis;
  /** A separate connection for the dispatcher's blocking reads. */
  blockingRedis: Redis;
  /** Connection options of the BullMQ worker (it opens its own connections). */
  workerConnection: ConnectionOptions;
  registry: Registry;
  log: Logger;
  /** Replaces the HTTP sender (tests). */
  sender?: CallbackSender;
}

export interface NotifierEvents {
  attempt: [DeliveryEvent];
  dispatched: [CallbackTask[]];
}

export function createNotifier(deps: NotifierDeps) {
  const { config, redis, log } = deps;
  const prefix = config.QUEUE_PREFIX;
  const keys = redisKeys(prefix);
  const events = new EventEmitter<NotifierEvents>();
  const retry: RetryPolicy = {
    scale: config.CALLBACK_RETRY_SCALE,
    jitter: config.CALLBACK_RETRY_JITTER,
    retryAfterCapMs: config.CALLBACK_RETRY_AFTER_MAX_S * 1000,
  };
  const endpoints = createEndpointStore(redis, prefix);
  const deadLetters = createDeadLetterStore(redis, prefix);
  const jobs = createQueueCache(redis, prefix);
  const queue = jobs.queueOf("deliverCallback");
  const sender = deps.sender ?? createHttpSender({ timeoutMs: config.CALLBACK_TIMEOUT_MS, allow: parseAllowList(config.CALLBACK_ALLOW_HOSTS) });

  registerBacklogMetrics(deps.registry, jobs.list);
  const metrics = createNotifierMetrics(deps.registry, {
    deadLetters,
    outboxLength: () => redis.xlen(keys.outbox()),
    async outboxOldestAgeSeconds() {
      const first = (await redis.xrange(keys.outbox(), "-", "+", "COUNT", 1))[0];
      return first ? Math.max(0, (Date.now() - Number(first[0].split("-")[0])) / 1000) : 0;
    },
  });

  const processor = createDeliveryProcessor({
    sender,
    secrets: secretLookup(deps.secrets),
    endpoints,
    deadLetters,
    recordAttempt: (messageId, attempt) => recordDelivery(redis, prefix, messageId, attempt, config.CALLBACK_DELIVERIES_TTL_S),
    retry,
    onAttempt(event) {
      metrics.onAttempt(event);
      const { task, attempt } = event;
      const fields = { messageId: task.messageId, tenant: task.tenant, attempt: attempt.attempt, status: attempt.status, outcome: attempt.outcome };
      if (attempt.outcome === "delivered") log.debug(fields, "callback delivered");
      else if (attempt.outcome === "retry") log.info({ ...fields, error: attempt.error, next: attempt.nextAttemptTime }, "callback attempt failed");
      else log.warn({ ...fields, error: attempt.error }, "callback dead-lettered");
      events.emit("attempt", event);
    },
  });

  const worker = createDeliveryWorker({
    connection: deps.workerConnection,
    prefix,
    concurrency: config.CALLBACK_CONCURRENCY,
    processor,
    retry,
    lockDurationMs: Math.max(30_000, config.CALLBACK_TIMEOUT_MS * 2),
    log,
  });

  const dispatcher = createDispatcher({
    redis: deps.blockingRedis,
    stream: keys.outbox(),
    group: config.OUTBOX_GROUP,
    consumer: config.OUTBOX_CONSUMER || `${hostname()}-${process.pid}`,
    sink: createQueueSink(jobs),
    log,
    batchSize: config.OUTBOX_BATCH,
    blockMs: config.OUTBOX_BLOCK_MS,
    claimIdleMs: config.OUTBOX_CLAIM_IDLE_MS,
    onDispatched(tasks) {
      metrics.onDispatched(tasks.length);
      events.emit("dispatched", tasks);
    },
  });

  const adminRoutes = createAdminRoutes({
    token: config.ADMIN_TOKEN,
    deadLetters,
    endpoints,
    replay: (task) => enqueueReplay(jobs, task),
    listDeliveries: (messageId) => listDeliveries(redis, prefix, messageId),
  });

  return {
    events,
    queue,
    deadLetters,
    endpoints,
    /** Route handler for startOpsServer's `extra`. */
    adminRoutes,
    /** Starts delivering, then dispatching. */
    async start(): Promise<void> {
      void worker.run();
      await worker.waitUntilReady();
      await dispatcher.start();
    },
    /** Stops reading the outbox, then drains in-flight deliveries (worker.close waits for them). */
    async stopDispatcher(): Promise<void> {
      await dispatcher.stop();
    },
    async stopWorker(): Promise<void> {
      await worker.close();
      await jobs.close();
      sender.close();
    },
  };
}

export type Notifier = ReturnType<typeof createNotifier>;
