/*
 * A sampler thread: loads the prior versions (sha256-verified) and samples on request. Sampling
 * runs here, off the worker's event loop, so that Redis/S3 I/O and BullMQ lock renewal on the
 * main thread never delay the next model step, and a long batch never starves the lock.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { workerData } from "node:worker_threads";
import { createInTurn, serveModelThread } from "@rebeca/platform";
import type { SessionOptions } from "@rebeca/inference";
import { createVersionCache } from "@rebeca/registry";
import { sampleWith, type SampleJob, type SampleOutcome } from "./backend.js";
import { loadPriors } from "./models.js";

export interface ThreadInit {
  modelsDir: string;
  /** Embedded versions, loaded at start and kept. */
  versions: string[];
  session: SessionOptions;
  /** Where the worker puts versions fetched from the registry (verified); "" = none. */
  cacheDir?: string;
  /** Most published versions kept loaded besides the embedded ones. @default 4 */
  maxLoaded?: number;
}

/** The sampler thread's start-up message: the versions it loaded. */
export interface SamplerThreadReady {
  type: "ready";
  models: { version: string; embeddingDim: number; info: Record<string, unknown> }[];
}

const init = workerData as ThreadInit;

serveModelThread<SampleJob, SampleOutcome, SamplerThreadReady>(async () => {
  const models: SamplerThreadReady["models"] = [];
  const priors = await loadPriors(init.modelsDir, init.versions, init.session, (info) => models.push(info));
  // Published versions load on their first job, from the cache the main thread filled and verified
  // (ensure runs before a job reaches a thread); loadPriors checks every file's sha256 again.
  const cache = createVersionCache({
    max: init.maxLoaded ?? 4,
    pinned: new Set(priors.keys()),
    load: async (version) => {
      const embedded = priors.get(version);
      if (embedded) return embedded;
      // An embedded version outside MODEL_VERSIONS, or one the main thread fetched into the cache.
      const dir = [init.modelsDir, init.cacheDir].find((d) => d && existsSync(join(d, version, "manifest.json")));
      if (!dir) throw new Error(`model version ${version} is not loaded`);
      return (await loadPriors(dir, [version], init.session, () => {})).get(version)!;
    },
    release: (_version, model) => model.release?.(),
  });
  // One sample at a time, in arrival order: the worker keeps the next call queued here while one
  // runs (LANES_PER_THREAD), so it starts the moment the previous one ends instead of after the
  // event loop has seen that result; run side by side, the two would only interleave their steps.
  // A version's load happens before its call takes a turn, so calls for loaded versions keep going.
  const inTurn = createInTurn();
  return {
    ready: { models },
    work: {
      run: (job, signal) => cache.use(job.version, (model) => inTurn(() => sampleWith(model, job, signal))),
      transfer: (outcome) => [outcome.embeddings.buffer as ArrayBuffer],
    },
  };
});
