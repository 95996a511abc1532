/**
 * The deadline reaper: ends EXPIRED the jobs and batch shards whose deadline passed while they
 * still wait in a queue, and takes them out of it. Stages check deadlines themselves, but only
 * when they take work: with no worker running (or all busy) nobody would look, the client would
 * hear nothing at its deadline, and a worker starting later would find the work in its queue.
 *
 * It reads due work from the deadline index (a sorted set the gateway fills at admission), in
 * bounded sweeps. Work a worker holds (BullMQ `active`) is left to that worker, which stops at the
 * deadline between chunks, and looked at again after `recheckMs`. Idempotent: every step is a
 * compare-and-set (the job store's transition, a shard counted once, a finished batch skipped), so
 * replicas sweeping at once or a crash midway repeat work and never double-count any.
 */
import { expiredError, shardJobId, TERMINAL_STATES, type BatchRecord, type FinalizeTask, type JobKind, type JobRecord } from "@rebeca/contracts";
import type { BatchStore, DeadlineIndex, JobExpirer, OutputOwner } from "@rebeca/jobstore";
import { Counter, Gauge, Histogram, type Logger, type Registry } from "@rebeca/platform";
import { createSweepLoop } from "./sweep-loop.js";

/** Where a unit of work stood in one queue when the reaper tried to take it out. */
export type UnqueueResult = "removed" | "active" | "absent";

/**
 * Takes a job out of the tenant's queue for `kind` if it waits there (waiting, prioritized or
 * delayed): "removed"; "active" when a worker holds it; "absent" when it is not waiting there.
 */
export type Unqueue = (kind: JobKind, tenant: string, jobId: string) => Promise<UnqueueResult>;

/** Pure: the reaper's step for a unit of work from where it stood in each queue it may wait in. */
export function verdictOf(results: readonly UnqueueResult[]): "expire" | "leave-to-worker" {
  return results.includes("active") ? "leave-to-worker" : "expire";
}

const TERMINAL_BATCH = new Set(["completed", "cancelled", "failed", "expired"]);

export interface DeadlineReaperDeps {
  index: DeadlineIndex;
  jobs: JobExpirer & { get(jobId: string): Promise<JobRecord | null> };
  batches: Pick<BatchStore, "get" | "openShards" | "shardDone">;
  unqueue: Unqueue;
  /** Writes an ended batch's manifest and finishes it (the decoder's finalize step, run here). */
  finalize: (task: FinalizeTask) => Promise<unknown>;
  registry: Registry;
  log: Logger;
  /** Jobs and batches handled per sweep. @default 200 */
  maxItems?: number;
  /** Pause between sweeps that found nothing more due, ms. @default 1000 */
  intervalMs?: number;
  /** When work a worker holds past its deadline is looked at again, ms. @default 30000 */
  recheckMs?: number;
  now?: () => number;
}

export function createDeadlineReaper(deps: DeadlineReaperDeps) {
  const now = deps.now ?? Date.now;
  const maxItems = deps.maxItems ?? 200;
  const intervalMs = deps.intervalMs ?? 1000;
  const recheckMs = deps.recheckMs ?? 30_000;
  const reaped = new Counter({
    name: "rebeca_deadline_reaped_total",
    help: "Work the deadline reaper took out of a queue and ended EXPIRED, by kind (job, shard) ; batch = batches it finalized",
    labelNames: ["kind"],
    registers: [deps.registry],
  });
  const left = new Counter({
    name: "rebeca_deadline_left_to_worker_total",
    help: "Due work the deadline reaper found held by a worker (which stops it at the deadline) and will look at again, by kind",
    labelNames: ["kind"],
    registers: [deps.registry],
  });
  const seconds = new Histogram({
    name: "rebeca_deadline_reaper_sweep_seconds",
    help: "Duration of one deadline-reaper sweep (at most maxItems jobs and batches)",
    buckets: [0.005, 0.02, 0.1, 0.5, 1, 5, 30],
    registers: [deps.registry],
  });
  new Gauge({
    name: "rebeca_deadline_due_items",
    help: "Jobs and batches past their deadline that the deadline reaper has not yet settled (its backlog)",
    registers: [deps.registry],
    async collect() {
      this.set(await deps.index.dueCount(now()));
    },
  });
  for (const kind of ["job", "shard", "batch"]) reaped.inc({ kind }, 0);
  for (const kind of ["job", "batch"]) left.inc({ kind }, 0);

  /** Settles one due job: "done" (ended or already finished) or "recheck" (a worker holds it). */
  async function reapJob(o: OutputOwner): Promise<"done" | "recheck"> {
    const record = await deps.jobs.get(o.id);
    if (!record || TERMINAL_STATES.has(record.state)) return "done";
    // A job waits in the prior queue, then (sampled) in the decode queue, under its own id.
    const where = await Promise.all((["sample", "decode"] as const).map((kind) => deps.unqueue(kind, o.tenant, o.id)));
    if (verdictOf(where) === "leave-to-worker") {
      left.inc({ kind: "job" });
      return "recheck";
    }
    const out = await deps.jobs.transition(o.id, "expired", { error: expiredError(record.deadline ?? new Date(now()).toISOString()) }, record);
    if (out.applied) reaped.inc({ kind: "job" });
    return "done";
  }

  /** Settles one due batch: its waiting shards count as expired; once every shard is counted it is finalized. */
  async function reapBatch(o: OutputOwner): Promise<"done" | "recheck"> {
    let batch: BatchRecord | null = await deps.batches.get(o.id);
    // A cancelled batch is the cancel's business: its waiting shards count as cancelled, not expired.
    if (!batch || TERMINAL_BATCH.has(batch.state)) return "done";
    // Still taking users: its shards are not all known yet; the intake's end seals it.
    if (batch.state === "receiving") return "recheck";
    let held = 0;
    for (const shard of await deps.batches.openShards(o.id, batch.counts.shardsTotal)) {
      const id = shardJobId(o.id, shard.index);
      const where = await Promise.all((["sampleShard", "decodeShard"] as const).map((kind) => deps.unqueue(kind, o.tenant, id)));
      if (verdictOf(where) === "leave-to-worker") {
        held++;
        continue;
      }
      const counted = await deps.batches.shardDone(batch, shard.index, { succeeded: 0, failed: 0, cancelled: 0, expired: shard.users });
      if (counted.counted) reaped.inc({ kind: "shard" });
    }
    if (held > 0) {
      left.inc({ kind: "batch" });
      return "recheck";
    }
    // Every shard is counted (by workers or here): the manifest of what was done, and the batch's end.
    batch = await deps.batches.get(o.id);
    if (batch && batch.counts.shardsDone >= batch.counts.shardsTotal) {
      if ((await deps.finalize({ tenant: o.tenant, batchId: o.id })) === "done") reaped.inc({ kind: "batch" });
    }
    return "done";
  }

  /** One bounded sweep: settles up to `maxItems` due jobs and batches; returns what it did. */
  async function sweepOnce(): Promise<{ settled: number; rechecks: number }> {
    const stop = seconds.startTimer();
    const result = { settled: 0, rechecks: 0 };
    try {
      for (const o of await deps.index.due(now(), maxItems)) {
        const step = o.kind === "job" ? await reapJob(o) : await reapBatch(o);
        if (step === "recheck") {
          await deps.index.reschedule(o, now() + recheckMs);
          result.rechecks++;
        } else {
          await deps.index.remove(o);
          result.settled++;
        }
      }
      return result;
    } finally {
      stop();
    }
  }

  return {
    sweepOnce,
    ...createSweepLoop({
      sweepOnce,
      // A full sweep suggests more is due: go again at once.
      full: (r) => r.settled + r.rechecks >= maxItems,
      worthLogging: (r) => r.settled > 0,
      intervalMs: intervalMs,
      name: "deadline sweep",
      log: deps.log,
    }),
  };
}
export type DeadlineReaper = ReturnType<typeof createDeadlineReaper>;
