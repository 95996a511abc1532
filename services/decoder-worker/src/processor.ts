import { createHash } from "node:crypto";
import { decodeEmbeddings, fromInlineEmbeddings, objectKeys, type DecodeTask, type JobOutput } from "@rebeca/contracts";
import { expireIfLate, type JobStore } from "@rebeca/jobstore";
import { encodePng, imageAt, type ImageDecoder } from "@rebeca/inference";
import type { BlobStore } from "@rebeca/storage";
import { UnrecoverableError, type FairLanes } from "@rebeca/platform";
import type { BatchingDecoder } from "./batching-decoder.js";

export interface LoadedDecoder {
  decoder: ImageDecoder;
  embeddingDim: number;
  /** Micro-batches single jobs across calls (holds the fair lanes itself); absent = one call per job. */
  batching?: BatchingDecoder;
}

export interface DecodeProcessorDeps {
  store: JobStore;
  /** Decoders by prior model version. */
  decoders: Map<string, LoadedDecoder>;
  /** Adds a published version's decoder to `decoders` before its job is taken (absent: embedded versions only). */
  ensureDecoder?: (version: string) => Promise<void>;
  blobs: BlobStore;
  /** The store as seen by one tenant (fair upload lanes); default: `blobs` for everyone. */
  blobsFor?: (tenant: string) => BlobStore;
  /** Shares the decoder between tenants (weighted fair); uploads run outside it. */
  lanes?: FairLanes;
  observe?: (images: number) => void;
  /** zlib level of the PNGs (PNG_LEVEL). @default 9, encodePng's */
  pngLevel?: number;
}

/**
 * The decode stage: embeddings from S3 → images → PNGs under deterministic keys → SUCCEEDED with
 * outputs. A redelivery overwrites the same objects, so outputs are never duplicated.
 */
export function createDecodeProcessor(deps: DecodeProcessorDeps) {
  return async function decode(task: DecodeTask): Promise<"done" | "skipped"> {
    const blobs = deps.blobsFor?.(task.tenant) ?? deps.blobs;
    await deps.ensureDecoder?.(task.modelVersion);
    const loaded = deps.decoders.get(task.modelVersion);
    if (!loaded) throw new UnrecoverableError(`no decoder for model version ${task.modelVersion} in this worker`);
    if (loaded.embeddingDim !== task.embeddingDim)
      throw new UnrecoverableError(`embedding dim ${task.embeddingDim} does not match the decoder's ${loaded.embeddingDim}`);
    const record = await deps.store.get(task.jobId);
    if (!record || record.state !== "decoding") return "skipped"; // cancelled, expired or already done
    if (await expireIfLate(deps.store, task.jobId, record, record)) return "skipped";

    const count = task.seeds.length;
    const raw = task.embeddings !== undefined ? fromInlineEmbeddings(task.embeddings) : await blobs.get(task.embeddingsKey);
    // Inline embeddings are stored here, beside the images, so every output's embedding_uri exists.
    const storedEmbeddings = task.embeddings !== undefined ? blobs.put(task.embeddingsKey, raw, "application/octet-stream") : Promise.resolve("");
    // Awaited below; marked handled now so that a failure elsewhere first (S3 down) cannot leave
    // it as an unhandled rejection, which would take the whole worker down.
    storedEmbeddings.catch(() => {});
    const embeddings = decodeEmbeddings(raw);
    if (embeddings.length !== count * task.embeddingDim)
      throw new UnrecoverableError(`embeddings object has ${embeddings.length} values, expected ${count}×${task.embeddingDim}`);
    let images;
    if (loaded.batching) {
      images = await loaded.batching.decode({ tenant: task.tenant, embeddings, count, seeds: task.seeds });
    } else {
      const release = deps.lanes ? await deps.lanes.acquire(task.tenant, count) : () => {};
      try {
        images = await loaded.decoder.decode(embeddings, count, task.seeds);
      } finally {
        release();
      }
    }

    const embeddingUri = blobs.uri(task.embeddingsKey);
    const outputs: JobOutput[] = await Promise.all(
      task.seeds.map(async (seed, index) => {
        const png = encodePng(imageAt(images, index), { level: deps.pngLevel });
        const uri = await blobs.put(objectKeys.image(task.tenant, task.jobId, index), png, "image/png");
        return {
          index,
          uri,
          width: images.width,
          height: images.height,
          sha256: createHash("sha256").update(png).digest("hex"),
          bytes: png.byteLength,
          contentType: "image/png",
          embeddingUri,
          seed,
        };
      }),
    );
    await storedEmbeddings;
    deps.observe?.(count);
    // The record read before decoding saves a read; the store's compare-and-set rereads it if stale.
    const done = await deps.store.transition(task.jobId, "succeeded", { outputs }, record);
    return done.applied ? "done" : "skipped";
  };
}
