import { z } from "zod";

/**
 * What a later request for an erased user gets: refused (FAILED_PRECONDITION), or served by the
 * population prior as if the model had never seen them.
 */
export const AFTER_ERASURE = ["reject", "population"] as const;
export type AfterErasure = (typeof AFTER_ERASURE)[number];

/** "data" queue, job name "erase-users": run (or resume) one erasure from its stored cursor. */
export const eraseUsersTaskSchema = z.object({
  tenant: z.string().min(1),
  erasureId: z.string().min(1),
});
export type EraseUsersTask = z.infer<typeof eraseUsersTaskSchema>;

/** Callback / event type sent when an erasure finishes. */
export const USER_DATA_DELETED = "user_data.deleted";

/**
 * Callback type sent, when an erasure finishes, to every endpoint that was given callbacks of the
 * erased users' jobs or batches: what Rebeca delivered cannot be recalled, so it names the jobs
 * and batches whose delivered outputs the receiver must delete its copies of (no user ids).
 */
export const USER_DATA_ERASED = "user_data.erased";

/** What one erasure removed, per kind (the receipt's counts). */
export interface ErasureCounts {
  /** Queued or running jobs of the users that were cancelled first. */
  jobsCancelled: number;
  /** Job records (with their idempotency keys) deleted from Redis. */
  jobRecords: number;
  /** BullMQ entries (queued, finished or failed) that carried the users' ids. */
  queueEntries: number;
  /** Events (tenant stream and callback outbox) that carried the users' jobs. */
  events: number;
  images: number;
  /** Embedding objects deleted, plus shard embedding rows zeroed in place. */
  embeddings: number;
  /** Lines removed from result manifests and shard results (rewritten without them). */
  manifestLines: number;
  /** Objects rewritten (manifests, shard results, shard embeddings). */
  objectsRewritten: number;
  /** Registry model versions rewritten with the users' rows blanked in their user table (a new revision each). */
  modelVersionsRewritten: number;
}

export const ERASURE_COUNT_KINDS: readonly (keyof ErasureCounts)[] = [
  "jobsCancelled",
  "jobRecords",
  "queueEntries",
  "events",
  "images",
  "embeddings",
  "manifestLines",
  "objectsRewritten",
  "modelVersionsRewritten",
];

export const zeroCounts = (): ErasureCounts => Object.fromEntries(ERASURE_COUNT_KINDS.map((k) => [k, 0])) as unknown as ErasureCounts;

export const ERASURE_STATES = ["running", "succeeded", "failed"] as const;
export type ErasureState = (typeof ERASURE_STATES)[number];

/** An erasure as stored and returned (the receipt once `state` is "succeeded"). */
export interface ErasureRecord {
  erasureId: string;
  tenant: string;
  requestId: string;
  state: ErasureState;
  afterErasure: AfterErasure;
  totalUsers: number;
  doneUsers: number;
  counts: ErasureCounts;
  createTime: string;
  endTime: string;
  callbackUrl: string;
  error: string;
}
