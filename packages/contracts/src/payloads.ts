import { z } from "zod";
import { SAMPLERS, SPACINGS } from "./jobs.js";

/** "prior" queue: sample the embeddings of one job. Parameters travel with the task so the
 *  worker needs no extra read; the job record stays the source of truth for state. */
export const priorTaskSchema = z.object({
  tenant: z.string().min(1),
  jobId: z.string().min(1),
  /** Empty for a user the tenant erased with after_erasure=POPULATION: no user row, the population prior. */
  userId: z.string(),
  modelVersion: z.string().min(1),
  numImages: z.number().int().positive(),
  guidance: z.number().finite(),
  steps: z.number().int().positive(),
  sampler: z.enum(SAMPLERS),
  /** Tasks enqueued before the spacing option used the old grid: "linspace". */
  spacing: z.enum(SPACINGS).default("linspace"),
  seed: z.number().int().nonnegative().max(0xffffffff),
  unknownUser: z.enum(["reject", "population"]),
  priority: z.number().int().nonnegative(),
  /** W3C traceparent of the hop that enqueued this task. */
  traceparent: z.string().default(""),
  /** RFC 3339: the task is held in the delayed set until then (absent = at once). */
  startAfter: z.string().optional(),
  /** RFC 3339: past it the job ends EXPIRED instead of sampling (absent = none). */
  deadline: z.string().optional(),
});
export type PriorTask = z.infer<typeof priorTaskSchema>;

/**
 * "decode" queue: decode a job's embeddings. Small ones travel inline (base64 float32, a few KB,
 * gone when the job completes) and the decoder stores them at `embeddingsKey` with the images;
 * larger ones are stored there by the prior stage first, so Redis never holds big payloads.
 */
export const decodeTaskSchema = z.object({
  tenant: z.string().min(1),
  jobId: z.string().min(1),
  modelVersion: z.string().min(1),
  embeddingsKey: z.string().min(1),
  /** Base64 float32 little-endian embeddings, when small enough to travel inline. */
  embeddings: z
    .string()
    .max(64 * 1024)
    .optional(),
  embeddingDim: z.number().int().positive(),
  seeds: z.array(z.number().int().nonnegative()).min(1),
  priority: z.number().int().nonnegative(),
  /** W3C traceparent of the prior stage's span. */
  traceparent: z.string().default(""),
});
export type DecodeTask = z.infer<typeof decodeTaskSchema>;

/** "callbacks" queue: deliver one event to one endpoint. */
export const callbackTaskSchema = z.object({
  tenant: z.string().min(1),
  /** Standard Webhooks `webhook-id`, stable across retries. */
  messageId: z.string().min(1),
  url: z.string().url(),
  eventId: z.string().min(1),
  /** The JSON body, built once so every retry sends the same bytes. */
  body: z.string(),
  /** W3C traceparent sent with the callback (the job's trace, a child span). */
  traceparent: z.string().optional(),
});
export type CallbackTask = z.infer<typeof callbackTaskSchema>;
