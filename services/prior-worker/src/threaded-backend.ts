import { createModelThreadPool, type Logger } from "@rebeca/platform";
import type { PriorBackend, SampleJob, SampleOutcome } from "./backend.js";
import type { SamplerThreadReady, ThreadInit } from "./sampler-thread.js";

/**
 * Sampling on `threads` sampler threads (one model instance each, see createModelThreadPool).
 * Resolves once every thread has loaded and verified its models; a thread that fails to load (e.g.
 * a sha256 mismatch) rejects with its message.
 */
export async function createThreadedBackend(
  init: ThreadInit,
  threads: number,
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
  return {
    versions: new Map(pool.ready.models.map((m) => [m.version, { embeddingDim: m.embeddingDim }])),
    sample: (job, signal) => pool.run(job, signal ? { signal } : {}),
    async close() {
      log.info(await pool.close(), "sampler threads stopped");
    },
  };
}
