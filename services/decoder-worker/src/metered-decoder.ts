import type { ImageDecoder } from "@rebeca/inference";
import { Counter, Gauge, type Registry } from "@rebeca/platform";

/**
 * Counts the decoder's model work per call, whichever path made it (micro-batched single jobs or
 * batch-shard chunks): images per call as each call returns, and when the latest call started.
 * The start time is what shows that no decoder work began after a batch's deadline.
 */
export function createDecoderMeter(registry: Registry) {
  const images = new Counter({
    name: "rebeca_decoder_model_images_total",
    help: "Images computed by decoder model calls (counted per call as it returns, before upload)",
    registers: [registry],
  });
  const lastStart = new Gauge({
    name: "rebeca_decoder_model_last_call_start_timestamp_seconds",
    help: "Unix time the latest decoder model call started (0 before the first)",
    registers: [registry],
  });
  return (decoder: ImageDecoder): ImageDecoder => ({
    async decode(embeddings, count, seeds, signal) {
      lastStart.set(Date.now() / 1000);
      const out = await decoder.decode(embeddings, count, seeds, signal);
      images.inc(count);
      return out;
    },
  });
}
