#!/usr/bin/env node
/** Gateway entry point: config and wiring only (gateway.ts builds the parts). */
import { createLogger, createMetricsRegistry, createRedis, createShutdown, fatal, loadConfig, startOpsServer, startTracing, waitReady } from "@rebeca/platform";
import { startRegistryClient } from "@rebeca/registry";
import { createBlobStore } from "@rebeca/storage";
import { gatewayConfigSchema, readApiKeys } from "./config.js";
import { startConsole } from "./console/server.js";
import { loadDescriptors } from "./descriptors.js";
import { consoleOptions, createGateway } from "./gateway.js";
import { httpBridgeOptions } from "./http/options.js";
import { startHttpBridge } from "./http/bridge.js";
import { loadModelCatalog, modelInfoOf } from "./models.js";
import { startGrpcServer } from "./server.js";
import { tlsFilesOf } from "./tls.js";

async function main() {
  const config = loadConfig(gatewayConfigSchema);
  const log = createLogger("gateway", config.LOG_LEVEL);
  const tracing = startTracing("gateway");
  const health = { ready: false };
  const registry = createMetricsRegistry("gateway");
  const models = await loadModelCatalog(config.MODELS_DIR, config.DEFAULT_MODEL_VERSION);
  const apiKeys = readApiKeys(config);
  const redis = createRedis(config.REDIS_URL, "producer", log, "gateway");
  const queueConnection = createRedis(config.REDIS_URL, "producer", log, "gateway-queue");
  await Promise.all([waitReady(redis), waitReady(queueConnection)]);
  const blobs = await createBlobStore(config);
  const embedded = new Set(models.keys());
  // Published versions join `models` once fetched and verified: requests may name them, policies route to them.
  const modelRegistry = await startRegistryClient({
    config,
    redis,
    subscriber: () => createRedis(config.REDIS_URL, "worker", log, "gateway-registry"),
    blobs,
    service: "gateway",
    metrics: registry,
    log,
    embedded: [...embedded],
    onVersion: async (version, dir) => void models.set(version, await modelInfoOf(dir, version)),
  });

  const gateway = await createGateway({
    config,
    apiKeys,
    models,
    embedded,
    refusedModels: () => modelRegistry?.source.refused ?? new Map(),
    redis,
    queueConnection,
    blobs,
    registry,
    log,
  });
  const ops = await startOpsServer({ host: config.HTTP_HOST, port: config.HTTP_PORT, registry, health });
  const descriptors = loadDescriptors(config.DESCRIPTOR_SET_FILE);
  const grpcTls = tlsFilesOf(config);
  const grpc = await startGrpcServer({
    host: config.GRPC_HOST,
    port: config.GRPC_PORT,
    descriptors,
    ...(grpcTls ? { tls: grpcTls } : {}),
    service: gateway.jobService,
    batchService: gateway.batchService,
    modelService: gateway.modelService,
    dataService: gateway.dataService,
    maxMessageBytes: config.MAX_MESSAGE_BYTES,
  });
  const httpJson = config.HTTP_JSON_ENABLED ? await startHttpBridge(httpBridgeOptions(config, descriptors, grpc.internalAddress)) : undefined;
  const admin = config.CONSOLE_ENABLED
    ? await startConsole(consoleOptions(config, { apiKeys, redis, blobs, log, batches: gateway.batches, queues: gateway.queues }))
    : undefined;
  health.ready = true;
  log.info(
    {
      grpcPort: grpc.port,
      httpPort: ops.port,
      consolePort: admin?.port ?? null,
      httpJsonPort: httpJson?.port ?? null,
      tls: grpcTls ? (grpcTls.clientCaFile ? "mutual" : "server") : "off",
      models: [...models.keys()],
    },
    "gateway started",
  );

  const shutdown = createShutdown(log, config.DRAIN_DEADLINE_MS);
  shutdown.add("mark not ready", () => (health.ready = false));
  const graceMs = Math.max(1000, config.DRAIN_DEADLINE_MS - 3000);
  // Together: requests the HTTP/JSON bridge relays finish on the draining gRPC server.
  shutdown.add("drain grpc and http/json", () => Promise.all([grpc.drain(graceMs), httpJson?.close(graceMs)]));
  shutdown.add("close console", () => admin?.close());
  shutdown.add("stop event tailers", () => gateway.hub.close());
  shutdown.add("stop registry watcher", () => modelRegistry?.close());
  shutdown.add("close queues", () => gateway.queues.close());
  shutdown.add("close redis", () => Promise.all([redis.quit(), queueConnection.quit()]));
  shutdown.add("close ops server", () => ops.close());
  shutdown.add("flush spans", () => tracing.shutdown());
  shutdown.installSignalHandlers();
}

main().catch(fatal(createLogger("gateway")));
