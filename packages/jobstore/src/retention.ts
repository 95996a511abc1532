import type { Redis } from "ioredis";
import { redisKeys, TERMINAL_STATES, type JobStateName } from "@rebeca/contracts";

/**
 * The retention index: one sorted set of the jobs and batches whose outputs have a lifetime,
 * scored by the earliest time (ms) they may be due. The gateway registers work when it accepts it
 * (creation time + lifetime, a lower bound of end time + lifetime); the sweeper takes what is due,
 * re-scores what has not ended yet and removes what it deleted. Only ids live here, never objects.
 */

/** What owns a set of outputs. */
export interface OutputOwner {
  kind: "job" | "batch";
  tenant: string;
  id: string;
}

const member = (o: OutputOwner) => JSON.stringify([o.kind, o.tenant, o.id]);
function owner(m: string): OutputOwner {
  const [kind, tenant, id] = JSON.parse(m) as [OutputOwner["kind"], string, string];
  return { kind, tenant, id };
}

/**
 * Jobs and batches in one sorted set scored by when they are due (ms): the shape both the
 * retention index and the deadline index share. Only ids live here.
 */
export function createDueIndex(redis: Redis, key: string) {
  return {
    /** Adds an owner due no earlier than `dueMs`; a repeat (a retried request) keeps the first score. */
    async register(o: OutputOwner, dueMs: number): Promise<void> {
      await redis.zadd(key, "NX", dueMs, member(o));
    },
    /** Up to `limit` owners due at `nowMs`, earliest first. */
    async due(nowMs: number, limit: number): Promise<OutputOwner[]> {
      return (await redis.zrangebyscore(key, "-inf", nowMs, "LIMIT", 0, limit)).map(owner);
    },
    /** Moves an owner that is not due yet to `dueMs`. */
    async reschedule(o: OutputOwner, dueMs: number): Promise<void> {
      await redis.zadd(key, "XX", dueMs, member(o));
    },
    /** Drops an owner that needs nothing more. */
    async remove(o: OutputOwner): Promise<void> {
      await redis.zrem(key, member(o));
    },
    /** Owners due at `nowMs` (a backlog, for metrics). */
    async dueCount(nowMs: number): Promise<number> {
      return redis.zcount(key, "-inf", nowMs);
    },
  };
}
export type DueIndex = ReturnType<typeof createDueIndex>;

/** The retention index (see above): owners scored by when their outputs may be due for deletion. */
export const createRetentionIndex = (redis: Redis, prefix: string) => createDueIndex(redis, redisKeys(prefix).outputExpiry());

/**
 * The deadline index: jobs and batches with a deadline, scored by it. The gateway registers work
 * with a deadline when it accepts it; the deadline reaper takes what is due and ends it EXPIRED if
 * it still waits in a queue, so a deadline holds even when no worker is there to check it.
 */
export const createDeadlineIndex = (redis: Redis, prefix: string) => createDueIndex(redis, redisKeys(prefix).deadlines());
export type DeadlineIndex = DueIndex;
export type RetentionIndex = DueIndex;

/** Where an owner's outputs stand, as the sweeper needs it: null when its record is gone (expired). */
export interface OwnerEnd {
  /** Whether the work ended (a terminal state); outputs of running work are never due. */
  ended: boolean;
  /** ISO 8601 end time ("" while running). */
  endTime: string;
  /** The lifetime it was submitted with, seconds (0 = keep). */
  ttlSeconds: number;
}

// Sets fields of a record only if it still exists: a record that expired meanwhile stays gone.
const SET_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`;

const TERMINAL_BATCH = new Set(["completed", "cancelled", "failed", "expired"]);

/** The job and batch records the retention sweeper reads and marks. */
export function createOutputRecords(redis: Redis, prefix: string) {
  const keys = redisKeys(prefix);
  return {
    /** How an owner's work ended; null when its record is gone. */
    async endOf(o: OutputOwner): Promise<OwnerEnd | null> {
      if (o.kind === "job") {
        const doc = await redis.hget(keys.job(o.id), "doc");
        if (!doc) return null;
        const r = JSON.parse(doc) as { state: JobStateName; endTime: string; outputTtlSeconds?: number };
        return { ended: TERMINAL_STATES.has(r.state), endTime: r.endTime, ttlSeconds: r.outputTtlSeconds ?? 0 };
      }
      const [doc, state, endTime] = await redis.hmget(keys.batch(o.id), "doc", "state", "end_time");
      if (!doc) return null;
      const spec = (JSON.parse(doc) as { spec: { outputTtlSeconds?: number } }).spec;
      // A cancelled batch has ended once its manifest of what completed is written (end_time).
      return { ended: TERMINAL_BATCH.has(state ?? "") && !!endTime, endTime: endTime ?? "", ttlSeconds: spec.outputTtlSeconds ?? 0 };
    },

    /**
     * Records that an owner's outputs were deleted: a job keeps its state but lists no outputs and
     * says when they went; a batch drops its manifest URI. No-op for a record that is gone.
     */
    async markDeleted(o: OutputOwner, time: string): Promise<void> {
      if (o.kind === "batch") {
        await redis.eval(SET_IF_EXISTS, 1, keys.batch(o.id), "outputs_deleted_time", time, "manifest", "");
        return;
      }
      const doc = await redis.hget(keys.job(o.id), "doc");
      if (!doc) return;
      // A finished job's record no longer changes, so this read-modify-write races with nothing.
      const record = { ...(JSON.parse(doc) as Record<string, unknown>), outputs: [], outputsDeletedTime: time };
      await redis.eval(SET_IF_EXISTS, 1, keys.job(o.id), "doc", JSON.stringify(record));
    },
  };
}
export type OutputRecords = ReturnType<typeof createOutputRecords>;
