import { Counter, Histogram, type Registry } from "@rebeca/platform";

/** The prior stage's own metrics (the stage worker exports the per-job ones). */
export function createPriorMetrics(registry: Registry) {
  const batchRows = new Histogram({
    name: "rebeca_prior_batch_rows",
    help: "Rows per sampler call (2 x images: CFG); one observation per model call, merged jobs together",
    buckets: [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
    registers: [registry],
  });
  const batchJobs = new Histogram({
    name: "rebeca_prior_batch_jobs",
    help: "Jobs (or shard chunks) merged into one sampler call",
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  const busySeconds = new Counter({
    name: "rebeca_prior_sampler_busy_seconds_total",
    help: "Wall seconds during which the sampler had at least one call (running or queued in its thread): over elapsed time, how busy the event loop kept it",
    registers: [registry],
  });
  const embeddingsTotal = new Counter({ name: "rebeca_prior_embeddings_total", help: "Embeddings sampled", registers: [registry] });
  return {
    /**
     * One sampler call of `rows` rows for `jobs` merged jobs: the average batch is the rows
     * histogram's sum over its count (inferences / executions).
     */
    observeCall(rows: number, jobs: number) {
      batchRows.observe(rows);
      batchJobs.observe(jobs);
    },
    /** A period of `seconds` in which the sampler always had a call. */
    observeBusy(seconds: number) {
      busySeconds.inc(seconds);
    },
    /** Embeddings handed on to the decode stage. */
    countEmbeddings(n: number) {
      embeddingsTotal.inc(n);
    },
  };
}
