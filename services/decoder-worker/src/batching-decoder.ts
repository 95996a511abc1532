/**
 * Micro-batching of decodes across jobs: concurrent single jobs of one model version are decoded
 * by one decoder call (one UNet call per step for all of them), and each gets its own images back.
 * Correct only because the decoders are batch-invariant (an image depends on its embedding and
 * seed, never on its neighbours), which packages/inference tests.
 */
import type { DecodedImages, ImageDecoder } from "@rebeca/inference";
import { createMicroBatcher, type BatchClock, type ExecutionStats } from "./micro-batcher.js";

export interface DecodeRequest {
  readonly tenant: string;
  readonly embeddings: Float32Array;
  readonly count: number;
  readonly seeds: readonly number[];
}

export interface BatchingOptions {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  /** Executions computing at once (DECODE_LANES). */
  readonly concurrency: number;
  /** Full batches handed to busy decoder threads besides (see the micro-batcher's `ahead`). */
  readonly ahead?: number;
  /**
   * Held around each execution: the model's fair lanes, shared with batch shards. Given the tenant
   * of the batch's first request and the batch's image count.
   */
  readonly acquire?: (tenant: string, images: number) => Promise<() => void>;
  readonly onExecution?: (stats: ExecutionStats) => void;
  readonly clock?: BatchClock;
}

/** Splits a batched decode into per-request images (views, no copy). */
export function splitDecoded(images: DecodedImages, counts: readonly number[]): DecodedImages[] {
  const per = images.channels * images.height * images.width;
  let at = 0;
  return counts.map((count) => {
    const pixels = images.pixels.subarray(at * per, (at + count) * per);
    at += count;
    return { ...images, pixels, count };
  });
}

/** A decode function that batches concurrent calls into one `decoder.decode`. */
export function createBatchingDecoder(decoder: ImageDecoder, embeddingDim: number, opts: BatchingOptions) {
  const batcher = createMicroBatcher<DecodeRequest, DecodedImages>({
    maxBatch: opts.maxBatch,
    maxWaitMs: opts.maxWaitMs,
    concurrency: opts.concurrency,
    ahead: opts.ahead ?? 0,
    size: (r) => r.count,
    ...(opts.onExecution ? { onExecution: opts.onExecution } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    async execute(reqs) {
      const total = reqs.reduce((n, r) => n + r.count, 0);
      const release = opts.acquire ? await opts.acquire(reqs[0]!.tenant, total) : () => {};
      try {
        if (reqs.length === 1) return [await decoder.decode(reqs[0]!.embeddings, reqs[0]!.count, reqs[0]!.seeds)];
        const embeddings = new Float32Array(total * embeddingDim);
        const seeds: number[] = [];
        let at = 0;
        for (const r of reqs) {
          embeddings.set(r.embeddings, at);
          at += r.embeddings.length;
          seeds.push(...r.seeds);
        }
        const images = await decoder.decode(embeddings, total, seeds);
        return splitDecoded(
          images,
          reqs.map((r) => r.count),
        );
      } finally {
        release();
      }
    },
  });
  return {
    decode: (req: DecodeRequest): Promise<DecodedImages> => {
      if (req.embeddings.length !== req.count * embeddingDim)
        return Promise.reject(new RangeError(`embeddings has ${req.embeddings.length} values, expected ${req.count}×${embeddingDim}`));
      if (req.seeds.length !== req.count) return Promise.reject(new RangeError(`${req.seeds.length} seeds for ${req.count} images`));
      return batcher.submit(req);
    },
    get queued() {
      return batcher.queued;
    },
  };
}
export type BatchingDecoder = ReturnType<typeof createBatchingDecoder>;
