import type { JobsOptions } from "bullmq";

/** BullMQ queue names. The prefix (default `{rebeca}`) keeps every key in one Redis Cluster slot. */
export const QUEUES = {
  prior: "prior",
  decode: "decode",
  callbacks: "callbacks",
  /** User-data erasure runs (`eraseUsers`), consumed by the data worker; one queue for all tenants. */
  data: "data",
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export const DEFAULT_PREFIX = "{rebeca}";

export type Stage = "prior" | "decode";
export const STAGES: readonly Stage[] = ["prior", "decode"];

/**
 * Interactive work (CreateJob's single jobs) and batch work (a batch's shards and its finalize
 * step) travel in separate queues, so that separate pools can serve them: a pool for batches that
 * runs at a lower CPU priority (`PROCESS_NICE`) soaks up what interactive jobs leave instead of
 * delaying them. One pool may also serve both (the default, `WORK_CLASSES=interactive,batch`).
 */
export type WorkClass = "interactive" | "batch";
export const WORK_CLASSES: readonly WorkClass[] = ["interactive", "batch"];

/**
 * Each tenant has its own queue per stage and work class (`prior.acme`, `prior-batch.acme`), so a
 * worker can pick the next tenant by weighted fair share instead of taking whatever sits first in
 * one shared queue. The class goes before the dot: no tenant name can make two names collide.
 */
export const stageQueue = (stage: Stage, tenant: string, workClass: WorkClass = "interactive"): string =>
  workClass === "interactive" ? `${stage}.${tenant}` : `${stage}-${workClass}.${tenant}`;

export interface JobOptionsInput {
  /** Deterministic BullMQ job id: a repeat add of the same id is ignored by BullMQ. */
  jobId: string;
  /** Rebeca priority, 0 (highest) .. 1000. @default 0 */
  priority?: number;
  /** Attempts before the job fails for good; with the exponential backoff (1 s, 2 s, 4 s, ...) 10
   *  attempts ride out ~8 minutes of an S3 or model-store outage. @default 10 */
  attempts?: number;
  /** Milliseconds the job is held in BullMQ's delayed set before it may run (a start window). @default 0 */
  delay?: number;
}

/**
 * The one place BullMQ job options are built. Every job is prioritized (BullMQ priority =
 * ours + 1) so that all jobs of a queue share one ordering, and finished jobs are removed so
 * Redis does not fill up (~2 KB per kept job).
 */
export function jobOptions({ jobId, priority = 0, attempts = 10, delay = 0 }: JobOptionsInput): JobsOptions {
  return {
    jobId,
    ...(delay > 0 ? { delay } : {}),
    priority: priority + 1,
    attempts,
    backoff: { type: "exponential", delay: 1000 },
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
  };
}
