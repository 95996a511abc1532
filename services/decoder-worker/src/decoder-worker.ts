/**
 * Composes the decoder worker from its parts: decoders (on decoder threads or in process), the
 * micro-batcher for single jobs, the job and batch stores, fair upload lanes, the job catalog's
 * queues, the processors of its three job kinds (`decode`, `decodeShard`, `finalizeBatch`) and the
 * stage workers that feed them. Main wires it to config, connections and the shutdown.
 */
import { join } from "node:path";
import { resolveModelVersions, sessionOptionsOf } from "@rebeca/inference";
import { JOB_ERROR_CODES } from "@rebeca/contracts";
import { parsePriorManifest } from "@rebeca/inference/manifest";
import { createShardProgress, createStores } from "@rebeca/jobstore";
import {
  createFinalizeProcessor,
  createFailureRouter,
  createFairLanes,
  createJobOutcomeCounter,
  createRedis,
  drainStageWorkers,
  inSpan,
  stageWorkerSettings,
  startStageWorkers,
  weightOf,
  type StageService,
  type StageServiceDeps,
  type StageWorkers,
} from "@rebeca/platform";
import { RegistryIntegrityError, startRegistryClient, VersionNotPublishedError } from "@rebeca/registry";
import { createBlobStore } from "@rebeca/storage";
import { createBatchingDecoder } from "./batching-decoder.js";
import type { LoadedDecoder } from "./processor.js";
import type { DecoderWorkerConfig } from "./config.js";
import { fairUploads } from "./fair-blobs.js";
import { createDecoderMeter } from "./metered-decoder.js";
import { createDecoderMetrics } from "./metrics.js";
import { latentOverrides, loadDecoders } from "./models.js";
import { createDecodeProcessor } from "./processor.js";
import { createShardDecodeProcessor } from "./shard-processor.js";
import { coalesceUsage, createUsageRecorder, createUsageStore, createUserIndex, usageOfOutputs } from "@rebeca/userdata";
import { createThreadedDecoders } from "./threaded-decoders.js";

/** How long usage deltas are summed before one write per tenant (at most this much is lost in a crash). */
const USAGE_WINDOW_MS = 250;

export async function createDecoderWorker(deps: StageServiceDeps<DecoderWorkerConfig>): Promise<StageService> {
  const { config, queues, registry, log } = deps;
  const versions = await resolveModelVersions(config.MODELS_DIR, config.MODEL_VERSIONS);
  const session = sessionOptionsOf(config);
  // Decoding on threads keeps model steps from queueing behind the event loop's PNG/S3/Redis work.
  const threaded = config.DECODE_THREADS
    ? await createThreadedDecoders(
        {
          modelsDir: config.MODELS_DIR,
          versions,
          session,
          latent: latentOverrides(config),
          cacheDir: config.MODEL_CACHE_DIR,
          maxLoaded: config.MODEL_MAX_LOADED,
        },
        config.DECODE_LANES,
        log,
        deps.onThreadDeath,
      )
    : undefined;
  const decoders = threaded?.decoders ?? (await loadDecoders(config.MODELS_DIR, versions, session, log, latentOverrides(config)));
  // Two objects per image (PNG, embeddings): PUTs without the SDK's per-request middleware.
  const untracedBlobs = await createBlobStore(config, { leanPuts: config.S3_LEAN_PUTS });
  // Each upload is a span of the job's trace (OpenTelemetry, when on).
  const blobs: typeof untracedBlobs = {
    ...untracedBlobs,
    put: (key, body, type) => inSpan("upload", undefined, { "rebeca.bytes": body.byteLength }, () => untracedBlobs.put(key, body, type)),
  };
  // Two usage records per job, written once per tenant per window.
  const usageWrites = coalesceUsage(createUsageStore(deps.redis, config.QUEUE_PREFIX), { windowMs: USAGE_WINDOW_MS });
  const usage = createUsageRecorder(usageWrites, registry, log);
  const countOutcome = createJobOutcomeCounter(registry);
  const { store, batches } = createStores(deps.redis, {
    prefix: config.QUEUE_PREFIX,
    retentionSeconds: config.JOB_RETENTION_SECONDS,
    eventsMaxLen: config.EVENTS_MAX_LEN,
    onFinished: (record) => {
      countOutcome(record);
      if (record.state === "succeeded") usage(record.tenant, usageOfOutputs(record.outputs));
    },
  });
  const metrics = createDecoderMetrics(registry);
  const meter = createDecoderMeter(registry);
  for (const loaded of decoders.values()) loaded.decoder = meter(loaded.decoder);
  const shardProgress = createShardProgress(deps.redis, { prefix: config.QUEUE_PREFIX, retentionSeconds: config.JOB_RETENTION_SECONDS });

  // Calls handed to the model at once: each thread holds the next one while it runs one.
  const perThread = threaded ? config.LANES_PER_THREAD : 1;
  const lanes = createFairLanes({ lanes: config.DECODE_LANES * perThread, weight: weightOf(config.TENANT_WEIGHTS) });
  const withBatching = (version: string, loaded: LoadedDecoder): LoadedDecoder => {
    if (config.DECODE_MAX_BATCH <= 1) return loaded;
    loaded.batching = createBatchingDecoder(loaded.decoder, loaded.embeddingDim, {
      maxBatch: config.DECODE_MAX_BATCH,
      maxWaitMs: config.DECODE_MAX_WAIT_MS,
      concurrency: config.DECODE_LANES,
      ahead: config.DECODE_LANES * (perThread - 1),
      acquire: (tenant, images) => lanes.acquire(tenant, images),
      onExecution: (s) => {
        metrics.execution(version, s);
        if (s.split) log.warn({ version, requests: s.requests }, "batched decode failed; retrying its jobs one by one");
      },
    });
    return loaded;
  };
  for (const [version, loaded] of decoders) withBatching(version, loaded);
  // The watcher fetches and verifies each newly published version ahead of its first job.
  const modelRegistry = await startRegistryClient({
    config,
    redis: deps.redis,
    subscriber: () => createRedis(config.REDIS_URL, "worker", log, "decoder-registry"),
    blobs,
    service: "decoder-worker",
    metrics: registry,
    log,
    embedded: versions,
    // Its threads may load any decoder it has taken on at any time: pruning keeps their files.
    inUse: () => decoders.keys(),
  });
  /** A published version's decoder joins `decoders` (on the threads, or loaded here without them). */
  async function ensureDecoder(version: string): Promise<void> {
    if (decoders.has(version) || !modelRegistry) return;
    let dir: string;
    try {
      dir = await modelRegistry.source.ensure(version);
    } catch (err) {
      // Refused or never published: its job fails for good. S3 or Redis trouble: retried.
      if (err instanceof RegistryIntegrityError || err instanceof VersionNotPublishedError) return;
      throw err;
    }
    if (decoders.has(version)) return;
    const dim = (await parsePriorManifest(join(dir, version, "manifest.json"))).manifest.embedding_dim;
    const loaded = threaded ? threaded.threadDecoder(version, dim) : (await loadDecoders(dir, [version], session, log, latentOverrides(config))).get(version)!;
    if (!decoders.has(version)) decoders.set(version, withBatching(version, loaded));
  }
  const blobsFor = fairUploads(blobs, createFairLanes({ lanes: config.UPLOAD_LANES, weight: weightOf(config.TENANT_WEIGHTS) }));
  const handlers = {
    decode: createDecodeProcessor({ store, decoders, ensureDecoder, blobs, blobsFor, lanes, observe: metrics.images, pngLevel: config.PNG_LEVEL }),
    decodeShard: createShardDecodeProcessor({
      chunkImages: config.DECODE_CHUNK_IMAGES,
      uploadConcurrency: config.UPLOAD_CONCURRENCY,
      batches,
      decoders,
      ensureDecoder,
      blobs,
      blobsFor,
      lanes,
      jobs: queues,
      observe: metrics.images,
      progressOf: (batchId, shard) => shardProgress.of(batchId, shard),
      onChunks: metrics.shardImages,
      userIndex: createUserIndex(deps.redis, config.QUEUE_PREFIX),
      usage,
      pngLevel: config.PNG_LEVEL,
    }),
    finalizeBatch: createFinalizeProcessor({ batches, blobs }),
  };
  let workers: StageWorkers | undefined;

  return {
    /** Model versions decoded. */
    versions: [...decoders.keys()],
    /** Starts taking `decode`, `decodeShard` and `finalizeBatch` jobs from every tenant's decode queues. */
    async start(): Promise<void> {
      const settings = stageWorkerSettings(config, deps.redis, deps.workerConnection);
      workers = await startStageWorkers({
        stage: "decode",
        ...settings,
        // The queues served are opened as tenants appear, so their backlog is exported from the start.
        tenants: async () => {
          const tenants = await settings.tenants();
          for (const tenant of tenants) for (const c of config.WORK_CLASSES) queues.get("decode", tenant, c);
          return tenants;
        },
        handlers,
        onFinalFailure: createFailureRouter({ code: JOB_ERROR_CODES.DECODING_FAILED, jobs: store, batches, sink: queues }),
        onProcessed: (tenant, seconds) => usage(tenant, { decoderSeconds: seconds }),
        registry,
        log,
      });
    },
    /** Stops taking jobs; decodes not done near the drain deadline are handed back for another worker. */
    drain: () => drainStageWorkers(workers, config.DRAIN_DEADLINE_MS),
    /** Stops the decoder threads (cancelling decodes a hand-back left running). */
    close: async () => {
      await modelRegistry?.close();
      await threaded?.close();
      await usageWrites.flush().catch(() => {}); // a failed write was logged by the recorder
    },
  };
}
