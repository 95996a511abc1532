import { createModelThreadPool, type Logger } from "@rebeca/platform";
import type { PriorBackend, SampleJob, SampleOutcome } from "./backend.js";
import { createSampleBatcher } from "./sample-batcher.js";
import type { SamplerThreadReady, ThreadInit } from "./sampler-thread.js";

/**
 * Sampling on `threads` sampler threads (one model instance each, see createModelThreadPool); jobs
 * that wait for a busy thread share its next call, up to `batchJobs` of them (sample-batcher.ts).
 * Resolves once every thread has loaded and verified its models; a thread that fails to load (e.g.
 * a sha256 mismatch) rejects with its message.
 */
export async function createThreadedBackend(
  init: ThreadInit,
  threads: number,
  batchJobs: number,
  log: Logger,
  /** A thread died after start-up: the process should exit and be replaced. */
  onThreadDeath?: (err: Error) => void,
): Promise<PriorBackend> {
  const pool = await createModelThreadPool<SampleJob, SampleOutcome, SamplerThreadReady>({
    entry: new URL("./sampler-thread.js", import.meta.url),
    workerData: init,
    threads,
    ...(onThreadDeath ? { onThreadDeath } : {}),
  });
  for (const m of pool.ready.models) log.info(m.info, "prior model loaded");
  const sample = createSampleBatcher({ run: (job, signal) => pool.run(job, { signal }), slots: threads, maxJobs: batchJobs });
  return {
    versions: new Map(pool.ready.models.map((m) => [m.version, { embeddingDim: m.embeddingDim }])),
    sample,
    async close() {
      log.info(await pool.close(), "sampler threads stopped");
    },
  };
}
