import { fileURLToPath } from "node:url";
import { z } from "zod";
import { baseConfigSchema, env, onnxConfigSchema, stageWorkerConfigSchema } from "@rebeca/platform";
import { registryConfigSchema } from "@rebeca/registry";
import { storageConfigSchema } from "@rebeca/storage";

const defaultModelsDir = fileURLToPath(new URL("../../../models", import.meta.url));

export const priorWorkerConfigSchema = baseConfigSchema
  .extend(onnxConfigSchema.shape)
  .extend(storageConfigSchema.shape)
  .extend(stageWorkerConfigSchema.shape)
  .extend(registryConfigSchema.shape)
  .extend({
    /** Directory of model versions (`<version>/manifest.json`). */
    MODELS_DIR: env.str(defaultModelsDir),
    /** Embedded versions this worker loads at start (comma-separated); empty = every version in MODELS_DIR. Published ones load on first use. */
    MODEL_VERSIONS: env.list(""),
    /**
     * Jobs in flight per tenant queue: while some sample, the others do their Redis and S3 I/O, and
     * those waiting for the sampler share its next call (up to SAMPLER_BATCH_WORK). Six merged
     * calls' worth (16 jobs each at the default), so that while one samples the next has always
     * gathered, though the jobs that arrive take two Redis round trips before they can join: the
     * sampler was busy 41 % of the time at 16, 87–93 % at 48–64, 96–98 % at 96 (bench/README.md).
     */
    CONCURRENCY: env.int(96),
    /** Tenants' shares of the sampler, JSON `{"acme": 3}` (default weight 1). */
    TENANT_WEIGHTS: env.str("{}"),
    /** Sampler threads (model instances), off the event loop; keep ORT threads × these within the cores. */
    SAMPLING_THREADS: env.int(1),
    /**
     * Sampler calls handed to each thread at once: with 2, the next call waits in the thread and
     * starts the moment the running one ends, instead of when the event loop has taken that result
     * and posted the next (which a busy event loop delays). The thread runs them one at a time.
     */
    LANES_PER_THREAD: env.int(2).pipe(z.number().int().min(1)),
    /**
     * Most work (images × evaluations) of one sampler call: a tenant's jobs that wait for the
     * sampler share its next call up to this (with few evaluations per embedding the per-call cost
     * rivals the sampling); larger jobs run alone. The default merges up to 16 jobs of 16 images at
     * 3 evaluations; 1 = one job per call.
     */
    SAMPLER_BATCH_WORK: env.int(768).pipe(z.number().int().min(1)),
    /**
     * Pipeline the job store's, producers' and BullMQ workers' Redis commands on one connection
     * (ioredis auto-pipelining): what one turn of the event loop issues goes in one write (fewer
     * system calls per job on this process and on Redis). Off: BullMQ workers use a connection of
     * their own, unpipelined.
     */
    PIPELINE_STORE: env.bool(true),
    /**
     * How often the jobs' prior-seconds are written to the tenants' daily usage (summed per tenant
     * meanwhile, so a job costs no Redis write of its own); a crash loses at most this much of it.
     */
    USAGE_FLUSH_MS: env.int(1000).pipe(z.number().int().min(1)),
    /** Embeddings of a job up to this many bytes travel inline in its decode task instead of via S3 (max 49152). */
    INLINE_EMBEDDINGS_MAX_BYTES: env.int(16_384).pipe(z.number().int().min(0).max(49_152)),
    /**
     * Users per sampler call within a shard, at least: the grain at which tenants take turns. Few-
     * evaluation samplers take more users per call, up to SAMPLER_BATCH_WORK (DPM-Solver++ 3 at
     * 1 image: 256 users).
     */
    SHARD_CHUNK_USERS: env.int(16),
    /** A tenant's unfinished decode jobs above which this stage holds back its shards. */
    DECODE_BACKLOG_LIMIT: env.int(64),
  });
export type PriorWorkerConfig = z.infer<typeof priorWorkerConfigSchema>;
