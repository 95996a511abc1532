import { z } from "zod";
import { SAMPLERS } from "./jobs.js";

/** "prior" queue: sample the embeddings of one job. Parameters travel with the task so the
 *  worker needs no extra read; the job record stays the source of truth for state. */
export const priorTaskSchema = z.object({
  tenant: z.string().min(1),
  jobId: z.string().min(1),
  userId: z.string().min(1),
  modelVersion: z.string().min(1),
  numImages: z.number().int().positive(),
  guidance: z.number().finite(),
  steps: z.number().int().positive(),
  sampler: z.enum(SAMPLERS),
  seed: z.number().int().nonnegative().max(0xffffffff),
  unknownUser: z.enum(["reject", "population"]),
  priority: z.number().int().nonnegative(),
});
export type PriorTask = z.infer<typeof priorTaskSchema>;

/** "decode" queue: decode the embeddings the prior stored in S3 (never in Redis). */
export const decodeTaskSchema = z.object({
  tenant: z.string().min(1),
  jobId: z.string().min(1),
  modelVersion: z.string().min(1),
  embeddingsKey: z.string().min(1),
  embeddingDim: z.number().int().positive(),
  seeds: z.array(z.number().int().nonnegative()).min(1),
  priority: z.number().int().nonnegative(),
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
});
export type CallbackTask = z.infer<typeof callbackTaskSchema>;
