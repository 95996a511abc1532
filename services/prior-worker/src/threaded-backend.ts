import { join } from "node:path";
import { parsePriorManifest } from "@rebeca/inference/manifest";
import { createModelThreadPool, type Logger } from "@rebeca/platform";
import { RegistryIntegrityError, VersionNotPublishedError, type ModelSource } from "@rebeca/registry";
import type { PriorBackend, SampleJob, SampleOutcome } from "./backend.js";
import type { SamplerThreadReady, ThreadInit } from "./sampler-thread.js";

/**
 * Sampling on `threads` sampler threads (one model instance each, see createModelThreadPool).
 * Resolves once every thread has loaded and verified its models; a thread that fails to load (e.g.
 * a sha256 mismatch) rejects with its message. With a registry `source`, a published version is
 * fetched and verified when its first job arrives (or earlier, by the registry watcher), and the
 * threads load it on that job.
 */
export async function createThreadedBackend(
  init: ThreadInit,
  threads: number,
  log: Logger,
  /** A thread died after start-up: the process should exit and be replaced. */
  onThreadDeath?: (err: Error) => void,
  source?: ModelSource,
): Promise<PriorBackend> {
  const pool = await createModelThreadPool<SampleJob, SampleOutcome, SamplerThreadReady>({
    entry: new URL("./sampler-thread.js", import.meta.url),
    workerData: init,
    threads,
    ...(onThreadDeath ? { onThreadDeath } : {}),
  });
  for (const m of pool.ready.models) log.info(m.info, "prior model loaded");
  const versions = new Map(pool.ready.models.map((m) => [m.version, { embeddingDim: m.embeddingDim }]));
  return {
    versions,
    async ensure(version) {
      if (versions.has(version) || !source) return;
      let dir: string;
      try {
        dir = await source.ensure(version);
      } catch (err) {
        // Refused or never published: it stays out of `versions`, and its job fails for good.
        if (err instanceof RegistryIntegrityError || err instanceof VersionNotPublishedError) return;
        throw err; // S3 or Redis trouble: the job is retried
      }
      const parsed = await parsePriorManifest(join(dir, version, "manifest.json"));
      versions.set(version, { embeddingDim: parsed.manifest.embedding_dim });
    },
    sample: (job, signal) => pool.run(job, signal ? { signal } : {}),
    async close() {
      log.info(await pool.close(), "sampler threads stopped");
    },
  };
}
