/**
 * Composes the prior worker from its parts: sampler threads, the job and batch stores, the job
 * catalog's queues, the processors of its two job kinds (`sample`, `sampleShard`) and the stage
 * workers that feed them. Main wires it to config, connections and the shutdown.
 */
import { resolveModelVersions, sessionOptionsOf } from "@rebeca/inference";
import { JOB_ERROR_CODES } from "@rebeca/contracts";
import { createStores } from "@rebeca/jobstore";
import { coalesceUsage, createUsageRecorder, createUsageStore, createUserIndex } from "@rebeca/userdata";
import {
  backlogOf,
  createFailureRouter,
  createFairLanes,
  createJobOutcomeCounter,
  createRedis,
  drainStageWorkers,
  stageWorkerSettings,
  startStageWorkers,
  weightOf,
  type StageService,
  type StageServiceDeps,
  type StageWorkers,
} from "@rebeca/platform";
import { startRegistryClient } from "@rebeca/registry";
import { createBlobStore } from "@rebeca/storage";
import type { PriorWorkerConfig } from "./config.js";
import { createDecodeHoldBack } from "./hold-back.js";
import { createPriorMetrics } from "./metrics.js";
import { createPriorProcessor } from "./processor.js";
import { createSampleBatcher } from "./sample-batcher.js";
import { createShardProcessor } from "./shard-processor.js";
import { createThreadedBackend } from "./threaded-backend.js";

export async function createPriorWorker(deps: StageServiceDeps<PriorWorkerConfig>): Promise<StageService> {
  const { config, queues, registry, log } = deps;
  const versions = await resolveModelVersions(config.MODELS_DIR, config.MODEL_VERSIONS);
  const session = sessionOptionsOf(config);
  const blobs = await createBlobStore(config);
  // The versions the sampler threads may load at any time (the backend's catalog, once it exists): pruning keeps their files.
  let catalog: ReadonlyMap<string, unknown> = new Map();
  const modelRegistry = await startRegistryClient({
    inUse: () => catalog.keys(),
    config,
    redis: deps.redis,
    subscriber: () => createRedis(config.REDIS_URL, "worker", log, "prior-registry"),
    blobs,
    service: "prior-worker",
    metrics: registry,
    log,
    // The watcher fetches and verifies each newly published version ahead of its first job.
    embedded: versions,
  });
  const backend = await createThreadedBackend(
    { modelsDir: config.MODELS_DIR, versions, session, cacheDir: config.MODEL_CACHE_DIR, maxLoaded: config.MODEL_MAX_LOADED },
    config.SAMPLING_THREADS,
    log,
    deps.onThreadDeath,
    modelRegistry?.source,
  );
  catalog = backend.versions;
  const { store, batches } = createStores(deps.redis, {
    prefix: config.QUEUE_PREFIX,
    retentionSeconds: config.JOB_RETENTION_SECONDS,
    eventsMaxLen: config.EVENTS_MAX_LEN,
    onFinished: createJobOutcomeCounter(registry),
  });
  // Jobs' prior-seconds are summed per tenant and written every USAGE_FLUSH_MS (no Redis write per job).
  const usageWrites = coalesceUsage(createUsageStore(deps.redis, config.QUEUE_PREFIX), { windowMs: config.USAGE_FLUSH_MS });
  const usage = createUsageRecorder(usageWrites, registry, log);
  const userIndex = createUserIndex(deps.redis, config.QUEUE_PREFIX);

  const metrics = createPriorMetrics(registry);
  // LANES_PER_THREAD calls per sampler thread: the next one waits in the thread, not on the event loop.
  const lanes = createFairLanes({ lanes: config.SAMPLING_THREADS * config.LANES_PER_THREAD, weight: weightOf(config.TENANT_WEIGHTS) });
  // A tenant's jobs that wait for a lane share the call it gets (sample-batcher.ts).
  const batcher = createSampleBatcher({
    run: (job, signal) => backend.sample(job, signal),
    lanes,
    maxWork: config.SAMPLER_BATCH_WORK,
    observe: metrics.observeCall,
    busy: metrics.observeBusy,
  });
  const sample = createPriorProcessor({
    store,
    backend,
    lanes,
    batcher,
    blobs,
    jobs: queues,
    inlineEmbeddingsMaxBytes: config.INLINE_EMBEDDINGS_MAX_BYTES,
    log,
    countEmbeddings: metrics.countEmbeddings,
  });
  const sampleShard = createShardProcessor({
    batches,
    backend,
    lanes,
    batcher,
    blobs,
    jobs: queues,
    holdBack: createDecodeHoldBack(async (tenant) => (await backlogOf(queues.queueOf("decodeShard", tenant))).total, config.DECODE_BACKLOG_LIMIT),
    chunkUsers: config.SHARD_CHUNK_USERS,
    chunkWork: config.SAMPLER_BATCH_WORK,
    countEmbeddings: metrics.countEmbeddings,
    erased: (tenant, userIds) => userIndex.erasedModes(tenant, userIds),
  });
  let workers: StageWorkers | undefined;

  return {
    /** Model versions served. */
    versions: [...backend.versions.keys()],
    /** Starts taking `sample` and `sampleShard` jobs from every tenant's prior queues. */
    async start(): Promise<void> {
      workers = await startStageWorkers({
        stage: "prior",
        // Pipelined, BullMQ's per-job commands (finish this job, fetch the next) share the writes of
        // the job store's: the jobs of one merged sampler call finish in one write, not one each.
        // Its blocking wait for new jobs runs on a connection of its own (BullMQ duplicates it).
        ...stageWorkerSettings(config, deps.redis, config.PIPELINE_STORE ? deps.redis : deps.workerConnection),
        handlers: { sample, sampleShard },
        onFinalFailure: createFailureRouter({ code: JOB_ERROR_CODES.SAMPLING_FAILED, jobs: store, batches, sink: queues }),
        onProcessed: (tenant, seconds) => usage(tenant, { priorSeconds: seconds }),
        registry,
        log,
      });
    },
    /**
     * Stops taking jobs; those not done near the drain deadline are handed back to the queue
     * (another worker resumes them from their recorded state at once, no stalled-job wait).
     */
    drain: () => drainStageWorkers(workers, config.DRAIN_DEADLINE_MS),
    /** Writes the pending usage, stops the registry watcher and the sampler threads (cancelling samples a hand-back left running). */
    close: async () => {
      await usageWrites.flush().catch(() => {}); // a failed write was logged by the recorder
      await modelRegistry?.close();
      await backend.close();
    },
  };
}
