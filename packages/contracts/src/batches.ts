import { z } from "zod";
import { imageSeed } from "./ids.js";
import { jobSpecSchema } from "./jobs.js";

export const BATCH_STATES = ["receiving", "running", "completed", "cancelled", "failed", "expired"] as const;
export type BatchStateName = (typeof BATCH_STATES)[number];

export const BATCH_EVENT_TYPES = [
  "batch.receiving",
  "batch.running",
  "batch.progress",
  "batch.completed",
  "batch.cancelled",
  "batch.failed",
  "batch.expired",
] as const;
export type BatchEventType = (typeof BATCH_EVENT_TYPES)[number];

/** Callback event filter of a batch when the request names none. */
export const DEFAULT_BATCH_CALLBACK_EVENTS: readonly string[] = ["batch.completed", "batch.cancelled", "batch.failed", "batch.expired"];

/** Parameters every user of a batch shares, fixed at creation: a job's, less the user, plus the shard size. */
export const batchSpecSchema = jobSpecSchema.omit({ userId: true }).extend({
  shardSize: z.number().int().positive(),
  /**
   * The tenant's canary when the batch was accepted without a model_version: `weight`% of its users
   * (by the same hash of tenant and user as single jobs) get `version`, the rest `modelVersion`.
   * Fixed with the batch, so a resumed intake splits its users exactly as before.
   */
  canary: z.object({ version: z.string().min(1), weight: z.number().min(0).max(100) }).optional(),
});
export type BatchSpec = z.infer<typeof batchSpecSchema>;

/** Per-user counters of a batch. */
export interface BatchCounts {
  total: number;
  received: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  /** Users not done when the batch's deadline passed. */
  expired: number;
  shardsTotal: number;
  shardsDone: number;
}

/** A batch as stored (doc) plus its live counters. */
export interface BatchRecord {
  batchId: string;
  tenant: string;
  requestId: string;
  state: BatchStateName;
  spec: BatchSpec;
  counts: BatchCounts;
  createTime: string;
  runningTime: string;
  endTime: string;
  resultManifestUri: string;
  error: { code: string; message: string } | null;
  /** When the retention sweeper deleted the batch's outputs and manifest ("" = still kept). */
  outputsDeletedTime: string;
  /** W3C traceparent of the batch's trace (the gateway's span); "" when the batch has none. */
  traceparent: string;
}

/** "prior" queue, job name "shard": sample a shard of a batch (one ONNX pass per chunk and step). */
export const shardTaskSchema = z.object({
  tenant: z.string().min(1),
  batchId: z.string().min(1),
  shard: z.number().int().nonnegative(),
  /** Position of userIds[0] in the batch. */
  firstPosition: z.number().int().nonnegative(),
  userIds: z.array(z.string().min(1)).min(1),
  /** Each user's position, when they are not consecutive from firstPosition (a canary batch's shard holds one version's users of a block). */
  positions: z.array(z.number().int().nonnegative()).optional(),
  spec: batchSpecSchema,
  /** W3C traceparent of the hop that enqueued this shard (the batch's trace). */
  traceparent: z.string().default(""),
});
export type ShardTask = z.infer<typeof shardTaskSchema>;

/** "decode" queue, job name "shard": decode a sampled shard. `failed` are positions with errors. */
export const decodeShardTaskSchema = shardTaskSchema.extend({
  embeddingsKey: z.string().min(1),
  embeddingDim: z.number().int().positive(),
  /** Users the prior could not serve, by position, and why (they have no embeddings). */
  failed: z.array(z.object({ position: z.number().int().nonnegative(), code: z.string(), message: z.string() })),
});
export type DecodeShardTask = z.infer<typeof decodeShardTaskSchema>;

/** "decode" queue, job name "finalize": write the result manifest and complete the batch. */
export const finalizeTaskSchema = z.object({ tenant: z.string().min(1), batchId: z.string().min(1) });
export type FinalizeTask = z.infer<typeof finalizeTaskSchema>;

/** Position in the batch of the shard's user `j`. */
export function positionOf(task: Pick<ShardTask, "firstPosition" | "positions">, j: number): number {
  return task.positions ? task.positions[j]! : task.firstPosition + j;
}

/** Deterministic BullMQ ids: a re-sent chunk or a retried stage adds nothing new. */
export const shardJobId = (batchId: string, shard: number) => `${batchId}-s${shard}`;
export const finalizeJobId = (batchId: string) => `${batchId}-final`;

/** Seed of image `index` for the user at `position` of a batch seeded `seed`. */
export function batchImageSeed(seed: number, position: number, index: number): number {
  return imageSeed(imageSeed((seed ^ 0x5bd1e995) >>> 0, position), index);
}

/** One line of a shard result / the batch manifest (JSON Lines). */
export interface UserResult {
  user_id: string;
  position: number;
  images?: { uri: string; sha256: string; bytes: number; width: number; height: number; seed: number }[];
  population_prior?: boolean;
  error?: { code: string; message: string };
  /** The model version that served the user (a canary batch's users differ). */
  model_version?: string;
}
