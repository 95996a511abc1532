import { fileURLToPath } from "node:url";
import { z } from "zod";
import { baseConfigSchema, env, onnxConfigSchema, stageWorkerConfigSchema } from "@rebeca/platform";
import { registryConfigSchema } from "@rebeca/registry";
import { storageConfigSchema } from "@rebeca/storage";

const defaultModelsDir = fileURLToPath(new URL("../../../models", import.meta.url));

export const decoderWorkerConfigSchema = baseConfigSchema
  .extend(onnxConfigSchema.shape)
  .extend(storageConfigSchema.shape)
  .extend(stageWorkerConfigSchema.shape)
  .extend(registryConfigSchema.shape)
  .extend({
    /** Directory of model versions (`<version>/manifest.json` naming its decoder). */
    MODELS_DIR: env.str(defaultModelsDir),
    /** Embedded versions this worker loads at start (comma-separated); empty = every version in MODELS_DIR. Published ones load on first use. */
    MODEL_VERSIONS: env.list(""),
    /** Jobs in flight per tenant queue (decodes share DECODE_LANES; uploads overlap). */
    CONCURRENCY: env.int(2),
    /** Decodes computed at once in this process (model instances). */
    DECODE_LANES: env.int(1),
    /** Decode on worker threads (one per lane) instead of the event loop's thread. */
    DECODE_THREADS: env.bool(true),
    /**
     * Decoder calls handed to each decoder thread at once: with 2, the next full batch waits in the
     * thread and starts the moment the running one ends, instead of when the event loop has settled
     * that batch and posted the next (a busy event loop left the model idle 2–3 % of a drain). The
     * thread runs them one at a time; partial batches never wait there. Decoding on the event loop
     * (DECODE_THREADS=false) hands over one call per lane.
     */
    LANES_PER_THREAD: env.int(2).pipe(z.number().int().min(1)),
    /** Images per decoder call within a batch shard: the grain at which tenants take turns. */
    DECODE_CHUNK_IMAGES: env.int(16),
    /**
     * Micro-batching of single jobs (Triton-style dynamic batching): most images decoded in one
     * call across concurrent jobs of one model version. 1 turns it off. Only jobs in flight can
     * share a call, so CONCURRENCY × tenants must reach it for full batches.
     */
    DECODE_MAX_BATCH: env.int(8),
    /**
     * Longest a job waits for company before its (partial) batch runs, in ms (Triton's max queue
     * delay). 0 adds no latency when idle; batches still form from jobs that queue while a decode runs.
     */
    DECODE_MAX_WAIT_MS: env.int(0),
    /** Latent decoders: override the manifest's scheduler (ddim | euler | pndm); empty = manifest. */
    LATENT_SCHEDULER: z.enum(["", "ddim", "euler", "pndm"]).default(""),
    /** Latent decoders: override the manifest's steps; 0 = manifest. */
    LATENT_STEPS: env.int(0),
    /** Latent decoders: override the manifest's guidance; empty = manifest. */
    LATENT_GUIDANCE: env.str(""),
    /** Parallel uploads per batch shard (keeps one shard from flooding the object store). */
    UPLOAD_CONCURRENCY: env.int(8),
    /** Uploads in flight per process, shared fairly between tenants like the decoder. */
    UPLOAD_LANES: env.int(8),
    /**
     * zlib level of the PNGs written (0–9). 6 (zlib's default) writes within 0.1 % of 9's bytes at half to
     * two thirds of its CPU on large images (the latent-bench model's 128×128 RGB: 2.2 vs 3.1–4.6 ms); same image either way.
     */
    PNG_LEVEL: z.coerce.number().int().min(0).max(9).default(6),
    /** Object writes as lean signed PUTs (`createS3Put`) instead of through the AWS SDK; false: the SDK's PutObject. */
    S3_LEAN_PUTS: env.bool(true),
    /** Tenants' shares of the decoder, JSON `{"acme": 3}` (default weight 1). */
    TENANT_WEIGHTS: env.str("{}"),
  });
export type DecoderWorkerConfig = z.infer<typeof decoderWorkerConfigSchema>;
