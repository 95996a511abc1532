/*
 * A sampler thread: loads the prior versions (sha256-verified) and samples on request. Sampling
 * runs here, off the worker's event loop, so that Redis/S3 I/O and BullMQ lock renewal on the
 * main thread never delay the next model step, and a long batch never starves the lock.
 */
import { workerData } from "node:worker_threads";
import { serveModelThread } from "@rebeca/platform";
import type { SessionOptions } from "@rebeca/inference";
import { sampleWith, type SampleJob, type SampleOutcome } from "./backend.js";
import { loadPriors } from "./models.js";

export interface ThreadInit {
  modelsDir: string;
  versions: string[];
  session: SessionOptions;
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
  return {
    ready: { models },
    work: {
      run(job, signal) {
        const model = priors.get(job.version);
        if (!model) throw new Error(`model version ${job.version} is not loaded`);
        return sampleWith(model, job, signal);
      },
      transfer: (outcome) => [outcome.embeddings.buffer as ArrayBuffer],
    },
  };
});
