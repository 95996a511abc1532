import type { SampleJob, SampleOutcome } from "./backend.js";

/*
 * Dynamic batching of sample jobs. With a few evaluations per embedding a 16-image job samples in
 * about a millisecond, so the fixed cost of one sampler call (a message to the thread and back, an
 * ONNX run per step) is a large part of it. Jobs that arrive while the sampler is busy wait here
 * and go together in the next call. An idle sampler takes a job at once (no waiting to fill a
 * batch), so a lone job is as fast as before. Merging is safe because every item's embedding
 * depends only on its own seed and user (the samplers are batch-invariant).
 */

/** What makes jobs mergeable: everything of a job except its items. */
export function batchKey(job: SampleJob): string {
  return JSON.stringify([job.version, job.unknownUser, job.guidance, job.steps, job.sampler, job.spacing ?? "linspace"]);
}

/** One call for several jobs of the same key: their items concatenated in order. */
export function mergeJobs(jobs: readonly SampleJob[]): SampleJob {
  const first = jobs[0];
  if (!first) throw new RangeError("no jobs to merge");
  const key = batchKey(first);
  for (const job of jobs) {
    if (batchKey(job) !== key) throw new RangeError(`jobs of different settings cannot share a call: ${batchKey(job)} vs ${key}`);
    if (job.userIds.length !== job.seeds.length) throw new RangeError(`${job.userIds.length} users for ${job.seeds.length} seeds`);
  }
  return { ...first, userIds: jobs.flatMap((j) => j.userIds), seeds: jobs.flatMap((j) => j.seeds) };
}

/**
 * Splits the outcome of a merged call back into one outcome per job, as if each had been sampled
 * alone: indices relative to the job, its rows of the embeddings, its population flags.
 */
export function splitOutcome(outcome: SampleOutcome, jobs: readonly SampleJob[]): SampleOutcome[] {
  const total = jobs.reduce((n, j) => n + j.seeds.length, 0);
  const dim = outcome.served.length === 0 ? 0 : outcome.embeddings.length / outcome.served.length;
  let offset = 0;
  let row = 0; // `served` is ascending: each job's rows follow the previous job's
  return jobs.map((job) => {
    const end = offset + job.seeds.length;
    const served: number[] = [];
    const population: boolean[] = [];
    const first = row;
    while (row < outcome.served.length && outcome.served[row]! < end) {
      served.push(outcome.served[row]! - offset);
      population.push(outcome.population[row]!);
      row++;
    }
    const rejected = outcome.rejected.filter((i) => i >= offset && i < end).map((i) => i - offset);
    const part = { embeddings: outcome.embeddings.slice(first * dim, row * dim), served, population, rejected };
    offset = end;
    if (offset === total && row !== outcome.served.length) throw new RangeError(`outcome serves items beyond the ${total} of its jobs`);
    return part;
  });
}

interface Waiting {
  job: SampleJob;
  key: string;
  signal: AbortSignal | undefined;
  resolve: (outcome: SampleOutcome) => void;
  reject: (err: Error) => void;
}

export interface SampleBatcherOptions {
  /** Runs one (merged) job on the sampler. */
  run: (job: SampleJob, signal: AbortSignal) => Promise<SampleOutcome>;
  /** Calls in flight at once (sampler threads). */
  slots: number;
  /** Most jobs merged into one call. */
  maxJobs: number;
}

/** Aborted before its items were sampled: what a cancelled job's sample rejects with. */
export class SampleAbortedError extends Error {
  constructor() {
    super("sampling aborted");
    this.name = "SampleAbortedError";
  }
}

/**
 * A `sample(job, signal)` that merges jobs waiting for the sampler (same settings, in arrival
 * order, up to `maxJobs`) into one call. A job aborted while it waits leaves the queue; one
 * aborted while its call runs gets its rejection at once and the call is aborted only when every
 * job in it was. When a merged call fails, its jobs are retried one by one, so one bad job fails
 * only itself.
 */
export function createSampleBatcher(o: SampleBatcherOptions): (job: SampleJob, signal?: AbortSignal) => Promise<SampleOutcome> {
  if (!(o.slots >= 1 && o.maxJobs >= 1)) throw new RangeError(`slots and maxJobs must be ≥ 1, got ${o.slots} and ${o.maxJobs}`);
  const queue: Waiting[] = [];
  let inFlight = 0;

  function pump() {
    while (inFlight < o.slots && queue.length > 0) {
      const key = queue[0]!.key;
      const batch: Waiting[] = [];
      for (let i = 0; i < queue.length && batch.length < o.maxJobs;) {
        if (queue[i]!.key === key) batch.push(...queue.splice(i, 1));
        else i++;
      }
      inFlight++;
      void runBatch(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  async function runBatch(batch: Waiting[]): Promise<void> {
    const abort = new AbortController();
    let live = batch.length;
    const settled = new Set<Waiting>();
    const settle = (w: Waiting, done: () => void) => {
      if (settled.has(w)) return;
      settled.add(w);
      done();
    };
    const onAbort = batch.map((w) => () => {
      settle(w, () => w.reject(new SampleAbortedError()));
      if (--live === 0) abort.abort();
    });
    batch.forEach((w, i) => w.signal?.addEventListener("abort", onAbort[i]!, { once: true }));
    try {
      const jobs = batch.map((w) => w.job);
      try {
        const parts = splitOutcome(await o.run(jobs.length === 1 ? jobs[0]! : mergeJobs(jobs), abort.signal), jobs);
        batch.forEach((w, i) => settle(w, () => w.resolve(parts[i]!)));
      } catch (err) {
        if (batch.length === 1 || abort.signal.aborted) {
          for (const w of batch) settle(w, () => w.reject(err as Error));
          return;
        }
        for (const w of batch) {
          if (settled.has(w)) continue;
          await o.run(w.job, abort.signal).then(
            (outcome) => settle(w, () => w.resolve(outcome)),
            (e: Error) => settle(w, () => w.reject(e)),
          );
        }
      }
    } finally {
      batch.forEach((w, i) => w.signal?.removeEventListener("abort", onAbort[i]!));
    }
  }

  return (job, signal) =>
    new Promise<SampleOutcome>((resolve, reject) => {
      if (signal?.aborted) return reject(new SampleAbortedError());
      const waiting: Waiting = { job, key: batchKey(job), signal, resolve, reject };
      const leave = () => {
        const at = queue.indexOf(waiting);
        if (at >= 0) {
          queue.splice(at, 1);
          reject(new SampleAbortedError());
        }
      };
      // Only a job still waiting leaves on abort; once in a call, aborts are runBatch's business.
      signal?.addEventListener("abort", leave, { once: true });
      queue.push(waiting);
      pump();
    });
}
