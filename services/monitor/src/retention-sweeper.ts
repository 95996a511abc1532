/**
 * The retention sweeper: deletes the outputs (images, embeddings, shard files, manifests) of jobs
 * and batches whose `output_ttl` ran out, from S3 and from their Redis records, in bounded sweeps.
 * It reads due owners from the retention index (a sorted set), so a sweep never lists the bucket
 * beyond the prefixes it deletes. Idempotent: deleting what is gone counts as deleted, so a crash
 * midway, or two replicas sweeping at once, repeat work and never lose track of any.
 */
import { objectKeys } from "@rebeca/contracts";
import type { OutputOwner, OutputRecords, OwnerEnd, RetentionIndex } from "@rebeca/jobstore";
import { Counter, Gauge, Histogram, type Logger, type Registry } from "@rebeca/platform";
import { createSweepLoop } from "./sweep-loop.js";
import type { BlobStore } from "@rebeca/storage";

/** What to do with one due owner: delete its outputs now, or look again at `dueMs`. */
export type SweepDecision = { action: "delete" } | { action: "wait"; dueMs: number };

/**
 * Pure: an owner whose record is gone is deleted (its lifetime outlived the record's retention);
 * one still running waits at least its whole lifetime; one that ended is due at end + lifetime.
 */
export function decide(end: OwnerEnd | null, nowMs: number): SweepDecision {
  if (!end) return { action: "delete" };
  if (!end.ended || !end.endTime) return { action: "wait", dueMs: nowMs + end.ttlSeconds * 1000 };
  const dueMs = Date.parse(end.endTime) + end.ttlSeconds * 1000;
  return dueMs <= nowMs ? { action: "delete" } : { action: "wait", dueMs };
}

/** The S3 prefix holding everything an owner stored. */
export const prefixOf = (o: OutputOwner): string => (o.kind === "job" ? objectKeys.jobPrefix(o.tenant, o.id) : objectKeys.batchPrefix(o.tenant, o.id));

export interface SweeperDeps {
  index: RetentionIndex;
  records: OutputRecords;
  blobs: Pick<BlobStore, "list" | "deleteMany">;
  registry: Registry;
  log: Logger;
  /** Owners handled per sweep (each is one listing of its prefix and a delete per 1,000 keys). @default 100 */
  maxOwners?: number;
  /** Keys per DeleteObjects request. @default 1000 */
  deletePage?: number;
  /** Owners handled at once within a sweep (each costs S3 round trips, not CPU). @default 16 */
  concurrency?: number;
  /** Pause between sweeps that found nothing left due, ms. @default 60000 */
  intervalMs?: number;
  now?: () => number;
}

export function createRetentionSweeper(deps: SweeperDeps) {
  const now = deps.now ?? Date.now;
  const maxOwners = deps.maxOwners ?? 100;
  const deletePage = deps.deletePage ?? 1000;
  const objects = new Counter({
    name: "rebeca_retention_objects_deleted_total",
    help: "Objects deleted from S3 by the retention sweeper, by owner kind (job, batch)",
    labelNames: ["kind"],
    registers: [deps.registry],
  });
  const owners = new Counter({
    name: "rebeca_retention_owners_swept_total",
    help: "Jobs and batches whose outputs the retention sweeper deleted, by kind",
    labelNames: ["kind"],
    registers: [deps.registry],
  });
  const seconds = new Histogram({
    name: "rebeca_retention_sweep_seconds",
    help: "Duration of one retention sweep (at most maxOwners owners)",
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [deps.registry],
  });
  new Gauge({
    name: "rebeca_retention_due_owners",
    help: "Jobs and batches whose outputs are due for deletion and not yet swept (the sweeper's backlog)",
    registers: [deps.registry],
    async collect() {
      this.set(await deps.index.dueCount(now()));
    },
  });
  for (const kind of ["job", "batch"]) {
    objects.inc({ kind }, 0);
    owners.inc({ kind }, 0);
  }

  /** Deletes every object under an owner's prefix, a page of keys at a time; returns how many. */
  async function deleteAll(o: OutputOwner): Promise<number> {
    let deleted = 0;
    let page: string[] = [];
    const flush = async () => {
      if (page.length === 0) return;
      deleted += (await deps.blobs.deleteMany(page)).deleted;
      objects.inc({ kind: o.kind }, page.length);
      page = [];
    };
    for await (const info of deps.blobs.list(prefixOf(o))) {
      page.push(info.key);
      if (page.length >= deletePage) await flush();
    }
    await flush();
    return deleted;
  }

  /** One bounded sweep: handles up to `maxOwners` due owners; returns what it did. */
  async function sweepOnce(): Promise<{ owners: number; objects: number; waiting: number }> {
    const stop = seconds.startTimer();
    const result = { owners: 0, objects: 0, waiting: 0 };
    try {
      const due = await deps.index.due(now(), maxOwners);
      const sweepOwner = async (o: OutputOwner) => {
        const decision = decide(await deps.records.endOf(o), now());
        if (decision.action === "wait") {
          await deps.index.reschedule(o, decision.dueMs);
          result.waiting++;
          return;
        }
        // Awaited before the sum: `x += await f()` would read x before the wait and lose other lanes' counts.
        const deleted = await deleteAll(o);
        result.objects += deleted;
        // The record is marked only after its objects are gone, and leaves the index last: a
        // crash in between repeats the sweep of this owner, which is harmless.
        await deps.records.markDeleted(o, new Date(now()).toISOString());
        await deps.index.remove(o);
        owners.inc({ kind: o.kind });
        result.owners++;
      };
      let next = 0;
      const lane = async () => {
        while (next < due.length) await sweepOwner(due[next++]!);
      };
      await Promise.all(Array.from({ length: Math.min(deps.concurrency ?? 16, due.length) }, lane));
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
      full: (r) => r.owners + r.waiting >= maxOwners,
      worthLogging: (r) => r.owners > 0,
      intervalMs: deps.intervalMs ?? 60_000,
      name: "retention sweep",
      log: deps.log,
    }),
  };
}
export type RetentionSweeper = ReturnType<typeof createRetentionSweeper>;
