import type { FairLanes } from "@rebeca/platform";
import type { PriorBackend, SampleJob, SampleOutcome } from "./backend.js";
import type { SampleBatcher } from "./sample-batcher.js";

export interface SamplingDeps {
  backend: PriorBackend;
  /** Shares the sampler between tenants (weighted fair); without it samples run as they come. */
  lanes?: FairLanes;
  /** Merges jobs waiting for the sampler into shared calls (it takes the lanes itself); the worker's path. */
  batcher?: SampleBatcher;
  /** How often a running sample checks whether its work is still wanted. @default 250 */
  cancelCheckMs?: number;
}

/**
 * Samples in the tenant's fair share of the sampler, polling `stillWanted` while it runs and
 * aborting when it says no (a cancel). Resolves null when aborted.
 */
export async function sampleWhile(deps: SamplingDeps, tenant: string, stillWanted: () => Promise<boolean>, job: SampleJob): Promise<SampleOutcome | null> {
  const abort = new AbortController();
  const timer = setInterval(() => {
    stillWanted().then(
      (wanted) => {
        if (!wanted) abort.abort();
      },
      () => {}, // a failed check is not a cancel; the next one will tell
    );
  }, deps.cancelCheckMs ?? 250);
  const release = deps.lanes && !deps.batcher ? await deps.lanes.acquire(tenant, job.seeds.length) : () => {};
  try {
    if (abort.signal.aborted) return null;
    return await (deps.batcher ? deps.batcher(tenant, job, abort.signal) : deps.backend.sample(job, abort.signal));
  } catch (err) {
    if (abort.signal.aborted) return null;
    throw err;
  } finally {
    release();
    clearInterval(timer);
  }
}
