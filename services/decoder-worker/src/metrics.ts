import { Counter, Histogram, type Registry } from "@rebeca/platform";
import type { ExecutionStats } from "./micro-batcher.js";

/** The decode stage's own metrics (the stage worker exports the per-job ones). */
export function createDecoderMetrics(registry: Registry) {
  const imagesTotal = new Counter({ name: "rebeca_decoder_images_total", help: "Images decoded and stored", registers: [registry] });
  // Triton's pair: the average batch is inferences / executions.
  const batchInferences = new Counter({
    name: "rebeca_decoder_batch_inferences_total",
    help: "Images decoded through the micro-batcher (single jobs)",
    labelNames: ["model_version"],
    registers: [registry],
  });
  const batchExecutions = new Counter({
    name: "rebeca_decoder_batch_executions_total",
    help: "Decoder calls the micro-batcher made; inferences / executions is the average batch",
    labelNames: ["model_version"],
    registers: [registry],
  });
  const batchQueue = new Histogram({
    name: "rebeca_decoder_batch_queue_seconds",
    help: "Time a single job waited in the micro-batcher before its decode started",
    labelNames: ["model_version"],
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const shardImages = new Counter({
    name: "rebeca_decoder_shard_images_total",
    help: "Images of decode shards by source: decoded now, or resumed from the shard's progress record (a predecessor's finished chunks)",
    labelNames: ["source"],
    registers: [registry],
  });
  return {
    /** One decode shard run: images resumed from its progress record and images decoded now. */
    shardImages(n: { resumedImages: number; decodedImages: number }) {
      shardImages.inc({ source: "resumed" }, n.resumedImages);
      shardImages.inc({ source: "decoded" }, n.decodedImages);
    },
    /** Images decoded and stored. */
    images: (n: number) => imagesTotal.inc(n),
    /** One decoder call of the micro-batcher for model `version`. */
    execution(version: string, s: ExecutionStats) {
      batchInferences.inc({ model_version: version }, s.items);
      batchExecutions.inc({ model_version: version });
      for (const ms of s.queueMs) batchQueue.observe({ model_version: version }, ms / 1000);
    },
  };
}
