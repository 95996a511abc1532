import { z } from "zod";

/** Lifecycle states of a job, as stored in Redis and shown (upper-cased) in the API. */
export const JOB_STATES = ["queued", "sampling", "decoding", "succeeded", "failed", "cancelled", "expired"] as const;
export type JobStateName = (typeof JOB_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<JobStateName> = new Set(["succeeded", "failed", "cancelled", "expired"]);

/** Order of the forward path; a job never moves backwards on it. */
const FORWARD_RANK: Record<JobStateName, number> = {
  queued: 0,
  sampling: 1,
  decoding: 2,
  succeeded: 3,
  failed: 3,
  cancelled: 3,
  expired: 3,
};

/**
 * Whether a job may move from `from` to `to`. Repeats of the same state are refused so that an
 * at-least-once redelivery of a stage cannot emit its event twice.
 */
export function canTransition(from: JobStateName, to: JobStateName): boolean {
  if (TERMINAL_STATES.has(from)) return false;
  return FORWARD_RANK[to] > FORWARD_RANK[from];
}

export const EVENT_TYPES = JOB_STATES.map((s) => `job.${s}` as const);
export type EventType = (typeof EVENT_TYPES)[number];
export const eventTypeOf = (state: JobStateName): EventType => `job.${state}`;

/**
 * The stable `JobError.code` values clients see (proto/rebeca/v1/jobs.proto and docs/api.md list
 * the same ones; job-error-codes.test.ts keeps the three in step).
 */
export const JOB_ERROR_CODES = {
  /** The model has no row for the user and the request asked to reject unknown users. */
  UNKNOWN_USER: "UNKNOWN_USER",
  /** The prior stage failed after its retries. */
  SAMPLING_FAILED: "SAMPLING_FAILED",
  /** The decode stage failed after its retries. */
  DECODING_FAILED: "DECODING_FAILED",
  /** The client cancelled the job. */
  CANCELLED: "CANCELLED",
  /** The job's deadline passed before it finished (state EXPIRED). */
  DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
  /** The tenant erased the user's data (DeleteUserData): queued work is cancelled, batch lines refused. */
  USER_ERASED: "USER_ERASED",
} as const;
export type JobErrorCode = keyof typeof JOB_ERROR_CODES;

/** Callback event filter used when a request names none: the terminal events. */
export const DEFAULT_CALLBACK_EVENTS: readonly EventType[] = ["job.succeeded", "job.failed", "job.cancelled", "job.expired"];

export const SAMPLERS = ["ddim", "ddpm", "dpmpp_2m", "dpmpp_2m_sde"] as const;
export type SamplerName = (typeof SAMPLERS)[number];
/** Timestep spacings of the samplers (docs/model-format.md, "Samplers"). */
export const SPACINGS = ["linspace", "leading", "trailing"] as const;
export type SpacingName = (typeof SPACINGS)[number];

export const outputSchema = z.object({
  index: z.number().int().nonnegative(),
  uri: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().positive(),
  contentType: z.string(),
  embeddingUri: z.string(),
  seed: z.number().int().nonnegative(),
});
export type JobOutput = z.infer<typeof outputSchema>;

/** The parameters of a job, fixed at creation. */
export const jobSpecSchema = z.object({
  userId: z.string(),
  numImages: z.number().int().positive(),
  guidance: z.number(),
  steps: z.number().int().positive(),
  sampler: z.enum(SAMPLERS),
  /** Records written before the spacing option used the old grid: "linspace". */
  spacing: z.enum(SPACINGS).default("linspace"),
  seed: z.number().int().nonnegative().max(0xffffffff),
  modelVersion: z.string(),
  priority: z.number().int().nonnegative(),
  labels: z.record(z.string(), z.string()),
  callbackUrl: z.string(),
  callbackEvents: z.array(z.string()),
  unknownUser: z.enum(["reject", "population"]),
  /** RFC 3339 time before which nothing runs; absent or "" = at once. */
  startAfter: z.string().optional(),
  /** RFC 3339 time after which unfinished work ends EXPIRED; absent or "" = none. */
  deadline: z.string().optional(),
  /** Seconds the outputs are kept after the work ends; absent or 0 = until deleted by other means. */
  outputTtlSeconds: z.number().int().nonnegative().optional(),
});
export type JobSpec = z.infer<typeof jobSpecSchema>;

/** A job as stored in Redis (one JSON value per job). Times are ISO 8601 strings. */
export const jobRecordSchema = jobSpecSchema.extend({
  jobId: z.string(),
  tenant: z.string(),
  requestId: z.string(),
  batchId: z.string(),
  state: z.enum(JOB_STATES),
  createTime: z.string(),
  updateTime: z.string(),
  startTime: z.string(),
  endTime: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  outputs: z.array(outputSchema),
  populationPrior: z.boolean(),
  /** W3C traceparent of the job's trace (the gateway's span); "" for records from before tracing. */
  traceparent: z.string().default(""),
  /** When the retention sweeper deleted the outputs ("" = still kept); `outputs` is then empty. */
  outputsDeletedTime: z.string().optional(),
});
export type JobRecord = z.infer<typeof jobRecordSchema>;
