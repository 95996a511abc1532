/**
 * Which served outputs the monitor scores. Pure: event fields and manifest lines in, score tasks
 * out. The choice hashes a stable key (job id, or batch id and position), so every replica and every
 * redelivery of an event makes the same choice.
 */
import { createHash } from "node:crypto";
import type { JobRecord, UserResult } from "@rebeca/contracts";
import { batchFromFields } from "@rebeca/contracts";
import { seededRandom } from "@rebeca/eval";

/** True for about `rate` of keys, always the same for one key. */
export function sampled(key: string, rate: number): boolean {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  const h = createHash("sha256").update(key).digest();
  return h.readUInt32BE(0) / 2 ** 32 < rate;
}

/** One served user whose images are scored. */
export interface ScoreTask {
  tenant: string;
  modelVersion: string;
  userId: string;
  imageUris: string[];
  /** The sampling key (job id or `<batch>:<position>`). */
  key: string;
}

/** A completed batch whose shard results (JSON Lines, one object per shard) are read one at a time. */
export interface BatchWork {
  batchId: string;
  modelVersion: string;
  tenant: string;
  shards: number;
}

/** What an event asks of the monitor: tasks now, or a completed batch's shard results to read first. */
export type EventWork = { tasks: ScoreTask[] } | { batch: BatchWork };

/** Reads a tenant event's fields (job events carry `job`, batch events the batch hash fields). */
export function workFromEvent(tenant: string, fields: Record<string, string>, rate: number): EventWork {
  const type = fields.type ?? "";
  if (type === "job.succeeded" && fields.job) {
    const job = JSON.parse(fields.job) as JobRecord;
    if (job.populationPrior || job.outputs.length === 0 || !sampled(job.jobId, rate)) return { tasks: [] };
    return { tasks: [{ tenant, modelVersion: job.modelVersion, userId: job.userId, imageUris: job.outputs.map((o) => o.uri), key: job.jobId }] };
  }
  if (type === "batch.completed" || type === "batch.expired") {
    const batch = batchFromFields(fields);
    if (rate <= 0 || batch.counts.succeeded === 0) return { tasks: [] };
    // Shard results rather than the whole manifest: memory stays bounded by one shard however
    // large the batch.
    return { batch: { batchId: batch.batchId, modelVersion: batch.spec.modelVersion, tenant, shards: batch.counts.shardsTotal } };
  }
  return { tasks: [] };
}

/** A finished single job's version and outcome from its event (for error rates); null for other events. */
export function finishedJobOf(fields: Record<string, string>): { modelVersion: string; failed: boolean } | null {
  if ((fields.type !== "job.succeeded" && fields.type !== "job.failed") || !fields.job) return null;
  const job = JSON.parse(fields.job) as Pick<JobRecord, "modelVersion">;
  return { modelVersion: job.modelVersion, failed: fields.type === "job.failed" };
}

/** The sampled users of a shard result or manifest (users served by the population prior are not personalized, so not scored). */
export function tasksFromResults(m: { batchId: string; modelVersion: string; tenant: string }, lines: UserResult[], rate: number): ScoreTask[] {
  return lines
    .filter((l) => l.images && l.images.length > 0 && !l.population_prior && sampled(`${m.batchId}:${l.position}`, rate))
    .map((l) => ({
      tenant: m.tenant,
      // A canary batch's users were served by different versions; each line says which.
      modelVersion: l.model_version || m.modelVersion,
      userId: l.user_id,
      imageUris: l.images!.map((i) => i.uri),
      key: `${m.batchId}:${l.position}`,
    }));
}

/** `count` distinct reference users other than `self`, chosen by a generator seeded from `self`. */
export function referenceUsers(self: string, known: readonly string[], count: number): string[] {
  const pool = known.filter((u) => u !== self);
  if (pool.length <= count) return pool;
  const next = seededRandom(createHash("sha256").update(self).digest().readUInt32BE(0));
  // Partial Fisher–Yates: the first `count` positions.
  const copy = [...pool];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, count);
}
