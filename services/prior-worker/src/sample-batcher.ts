import type { FairLanes } from "@rebeca/platform";
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
  for (const job of jobs) if (batchKey(job) !== key) throw new RangeError(`jobs of different settings cannot share a call: ${batchKey(job)} vs ${key}`);
  return concatItems(jobs);
}

/** The jobs' items in one job with the first one's settings (the caller knows they share them). */
function concatItems(jobs: readonly SampleJob[]): SampleJob {
  const userIds: string[] = [];
  const seeds: number[] = [];
  for (const job of jobs) {
    if (job.userIds.length !== job.seeds.length) throw new RangeError(`${job.userIds.length} users for ${job.seeds.length} seeds`);
    for (let i = 0; i < job.seeds.length; i++) {
      userIds.push(job.userIds[i]!);
      seeds.push(job.seeds[i]!);
    }
  }
  return { ...jobs[0]!, userIds, seeds };
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
  signal: AbortSignal | undefined;
  resolve: (outcome: SampleOutcome) => void;
  reject: (err: Error) => void;
}

/** Jobs of one tenant and settings that will share a sampler call, gathered while it waits for a lane. */
interface OpenBatch {
  members: Waiting[];
  work: number;
}

/** Work of a job in item-evaluations: what one sampler call's length grows with. */
export const workOf = (job: SampleJob): number => job.seeds.length * Math.max(1, job.steps);

export interface SampleBatcherOptions {
  /** Runs one (merged) job on the sampler. */
  run: (job: SampleJob, signal: AbortSignal) => Promise<SampleOutcome>;
  /** The sampler's lanes, shared fairly between tenants: a batch waits for one, then runs. */
  lanes: FairLanes;
  /**
   * Most work (items × evaluations) merged into one call; a job above it runs alone. Keeps a call
   * short, so another tenant's job never waits long behind a merged one (slow samplers such as
   * DDPM 1000 are never merged).
   */
  maxWork: number;
  /** Told of every sampler call that returned: its rows (2 per served item: CFG) and how many jobs it carried. */
  observe?: (rows: number, jobs: number) => void;
  /**
   * Told, each time the sampler runs out of calls, how long it had at least one (running or queued
   * in its thread), in seconds: summed over time, how busy the sampler was kept.
   */
  busy?: (seconds: number) => void;
}

/** Aborted before its items were sampled: what a cancelled job's sample rejects with. */
export class SampleAbortedError extends Error {
  constructor() {
    super("sampling aborted");
    this.name = "SampleAbortedError";
  }
}

/** Samples a tenant's job in that tenant's fair share of the sampler. */
export type SampleBatcher = (tenant: string, job: SampleJob, signal?: AbortSignal) => Promise<SampleOutcome>;

/**
 * A sampler front that merges jobs: a job opens a batch for its tenant and settings, which waits
 * for a lane (weighted fair between tenants, see fair-lanes.ts); the tenant's jobs of the same
 * settings that arrive meanwhile join it (up to `maxWork`, each billed to the tenant's share), and
 * the batch runs as one call when its lane comes. An idle sampler grants the lane at once, so a
 * lone job is as fast as before. A job aborted while it waits leaves its batch; one aborted while
 * its call runs gets its rejection at once, and the call is aborted only when every job in it
 * was. When a merged call fails, its jobs are retried one by one, so one bad job fails only itself.
 */
export function createSampleBatcher(o: SampleBatcherOptions): SampleBatcher {
  if (!(o.maxWork >= 1)) throw new RangeError(`maxWork must be ≥ 1, got ${o.maxWork}`);
  const open = new Map<string, OpenBatch>();

  let outstanding = 0;
  let busySince = 0;
  async function call(job: SampleJob, jobs: number, signal: AbortSignal): Promise<SampleOutcome> {
    if (outstanding++ === 0) busySince = performance.now();
    try {
      const outcome = await o.run(job, signal);
      o.observe?.(outcome.served.length * 2, jobs);
      return outcome;
    } finally {
      if (--outstanding === 0) o.busy?.((performance.now() - busySince) / 1000);
    }
  }

  /**
   * Runs a batch as one call and settles its jobs. `free` gives the lane back: called as soon as
   * the merged call returns, before its jobs go on (see below); a failed merged call keeps the
   * lane while its jobs are retried one by one.
   */
  async function runBatch(batch: Waiting[], free: () => void): Promise<void> {
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
        // One open batch holds jobs of one key only, so they merge without re-checking.
        const parts = splitOutcome(await call(jobs.length === 1 ? jobs[0]! : concatItems(jobs), jobs.length, abort.signal), jobs);
        // The sampler is free: the batch that gathered meanwhile gets the lane and its call is
        // posted (microtasks) before these jobs' hand-offs run (after them, in the check phase);
        // otherwise the sampler would stand idle while the event loop hands on a whole batch.
        free();
        await new Promise((r) => setImmediate(r));
        batch.forEach((w, i) => settle(w, () => w.resolve(parts[i]!)));
      } catch (err) {
        if (batch.length === 1 || abort.signal.aborted) {
          for (const w of batch) settle(w, () => w.reject(err as Error));
          return;
        }
        for (const w of batch) {
          if (settled.has(w)) continue;
          await call(w.job, 1, abort.signal).then(
            (outcome) => settle(w, () => w.resolve(outcome)),
            (e: Error) => settle(w, () => w.reject(e)),
          );
        }
      }
    } finally {
      batch.forEach((w, i) => w.signal?.removeEventListener("abort", onAbort[i]!));
    }
  }

  async function start(key: string, tenant: string, batch: OpenBatch): Promise<void> {
    const release = await o.lanes.acquire(tenant, batch.members[0]!.job.seeds.length);
    if (open.get(key) === batch) open.delete(key);
    try {
      if (batch.members.length > 0) await runBatch(batch.members, release);
    } finally {
      release(); // a second call is a no-op (fair-lanes.ts)
    }
  }

  return (tenant, job, signal) =>
    new Promise<SampleOutcome>((resolve, reject) => {
      if (signal?.aborted) return reject(new SampleAbortedError());
      const waiting: Waiting = { job, signal, resolve, reject };
      const key = `${tenant}\n${batchKey(job)}`; // batchKey is JSON: no newline of its own
      const work = workOf(job);
      let batch = open.get(key);
      if (batch && batch.work + work <= o.maxWork) {
        batch.members.push(waiting);
        batch.work += work;
        o.lanes.charge(tenant, job.seeds.length);
      } else {
        batch = { members: [waiting], work };
        open.set(key, batch);
        void start(key, tenant, batch).catch(reject);
      }
      const joined = batch;
      // A job still waiting for its batch's lane leaves on abort; once running, runBatch decides.
      signal?.addEventListener(
        "abort",
        () => {
          if (open.get(key) !== joined) return;
          const at = joined.members.indexOf(waiting);
          if (at < 0) return;
          joined.members.splice(at, 1);
          joined.work -= work;
          reject(new SampleAbortedError());
        },
        { once: true },
      );
    });
}
