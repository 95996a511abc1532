import { Counter, Histogram, type Registry } from "@rebeca/platform";

/** The prior stage's own metrics (the stage worker exports the per-job ones). */
export function createPriorMetrics(registry: Registry) {
  const batchRows = new Histogram({
    name: "rebeca_prior_batch_rows",
    help: "Rows per ONNX prior run (2 x images: CFG)",
    buckets: [2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  });
  const embeddingsTotal = new Counter({ name: "rebeca_prior_embeddings_total", help: "Embeddings sampled", registers: [registry] });
  return {
    /** One sampler run of `rows` rows that produced `embeddings` embeddings. */
    observe(rows: number, embeddings: number) {
      batchRows.observe(rows);
      embeddingsTotal.inc(embeddings);
    },
  };
}
