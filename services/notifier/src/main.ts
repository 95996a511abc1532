#!/usr/bin/env node
/** Notifier entry point: wiring only (see notifier.ts for the parts). */
import { readFile } from "node:fs/promises";
import { createLogger, createMetricsRegistry, createRedis, createShutdown, fatal, loadConfig, startOpsServer, startTracing, waitReady } from "@rebeca/platform";
import { notifierConfigSchema } from "./config.js";
import { createNotifier } from "./notifier.js";
import { parseWebhookSecrets } from "./secrets.js";

const bootLog = createLogger("notifier");

async function main(): Promise<void> {
  const config = loadConfig(notifierConfigSchema);
  const log = createLogger("notifier", config.LOG_LEVEL);
  const tracing = startTracing("notifier");
  const secrets = parseWebhookSecrets(config.WEBHOOK_SECRETS ?? (await readFile(config.WEBHOOK_SECRETS_FILE!, "utf8")));
  log.info({ tenants: [...secrets.keys()], allow: config.CALLBACK_ALLOW_HOSTS, retryScale: config.CALLBACK_RETRY_SCALE }, "starting");

  const redis = createRedis(config.REDIS_URL, "worker", log, "notifier");
  const blockingRedis = createRedis(config.REDIS_URL, "worker", log, "notifier-outbox");
  const workerRedis = createRedis(config.REDIS_URL, "worker", log, "notifier-worker");
  await waitReady(redis);
  const registry = createMetricsRegistry("notifier");
  const health = { ready: false };
  const notifier = createNotifier({
    config,
    secrets,
    redis,
    blockingRedis,
    workerConnection: workerRedis,
    registry,
    log,
  });
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health, extra: notifier.adminRoutes });
  await notifier.start();
  health.ready = true;
  log.info({ httpPort: ops.port }, "notifier started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("not ready", () => (health.ready = false));
  shutdown.add("stop outbox dispatcher", () => notifier.stopDispatcher());
  shutdown.add("drain deliveries", () => notifier.stopWorker());
  shutdown.add("close ops server", () => ops.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), blockingRedis.quit(), workerRedis.quit()]));
  shutdown.add("flush spans", () => tracing.shutdown());
  shutdown.installSignalHandlers();
}

main().catch(fatal(bootLog));
