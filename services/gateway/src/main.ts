#!/usr/bin/env node
/** Gateway entry point: config and wiring only (gateway.ts builds the parts). */
import { createLogger, createMetricsRegistry, createRedis, createShutdown, fatal, loadConfig, startOpsServer, waitReady } from "@rebeca/platform";
import { createBlobStore } from "@rebeca/storage";
import { gatewayConfigSchema, readApiKeys } from "./config.js";
import { startConsole } from "./console/server.js";
import { consoleOptions, createGateway } from "./gateway.js";
import { loadModelCatalog } from "./models.js";
import { startGrpcServer } from "./server.js";

async function main() {
  const config = loadConfig(gatewayConfigSchema);
  const log = createLogger("gateway", config.LOG_LEVEL);
  const health = { ready: false };
  const registry = createMetricsRegistry("gateway");
  const models = await loadModelCatalog(config.MODELS_DIR, config.DEFAULT_MODEL_VERSION);
  const apiKeys = readApiKeys(config);
  const redis = createRedis(config.REDIS_URL, "producer", log, "gateway");
  const queueConnection = createRedis(config.REDIS_URL, "producer", log, "gateway-queue");
  await Promise.all([waitReady(redis), waitReady(queueConnection)]);
  const blobs = await createBlobStore(config);

  const gateway = await createGateway({ config, apiKeys, models, redis, queueConnection, blobs, registry, log });
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });
  const grpc = await startGrpcServer({
    host: config.GRPC_HOST,
    port: config.GRPC_PORT,
    protoDir: config.PROTO_DIR,
    service: gateway.jobService,
    batchService: gateway.batchService,
    dataService: gateway.dataService,
    maxMessageBytes: config.MAX_MESSAGE_BYTES,
  });
  const admin = config.CONSOLE_ENABLED
    ? await startConsole(consoleOptions(config, { apiKeys, redis, blobs, log, batches: gateway.batches, queues: gateway.queues }))
    : undefined;
  health.ready = true;
  log.info({ grpcPort: grpc.port, httpPort: ops.port, consolePort: admin?.port ?? null, models: [...models.keys()] }, "gateway started");

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("mark not ready", () => (health.ready = false));
  shutdown.add("drain grpc", () => grpc.drain(Math.max(1000, config.DRAIN_DEADLINE_MS - 3000)));
  shutdown.add("close console", () => admin?.close());
  shutdown.add("stop event tailers", () => gateway.hub.close());
  shutdown.add("close queues", () => gateway.queues.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), queueConnection.quit()]));
  shutdown.add("close ops server", () => ops.close());
  shutdown.installSignalHandlers();
}

main().catch(fatal(createLogger("gateway")));
