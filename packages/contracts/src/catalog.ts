/**
 * The job catalog: every BullMQ job Rebeca enqueues, with the queue family it travels in, its job
 * name, the zod schema of its payload and its default options. Producers add through it (the
 * payload is parsed on the way in) and stage workers dispatch through it (by family and name), so
 * no job is added or recognised by a bare string anywhere else.
 *
 * A new job type is one entry here plus a handler where its family is consumed; the type system
 * then asks every consumer of that family for it.
 */
import type { JobsOptions } from "bullmq";
import type { z } from "zod";
import { decodeShardTaskSchema, finalizeJobId, finalizeTaskSchema, shardJobId, shardTaskSchema } from "./batches.js";
import { callbackTaskSchema, decodeTaskSchema, priorTaskSchema } from "./payloads.js";
import { jobOptions, QUEUES, stageQueue, type Stage, type WorkClass } from "./queues.js";
import { delayUntil } from "./windows.js";
import { eraseUsersTaskSchema } from "./userdata.js";

/** Where a job travels: a pipeline stage (per-tenant queues, one per work class) or the callbacks queue. */
export type QueueFamily = Stage | typeof QUEUES.callbacks | typeof QUEUES.data;

/** One catalog entry. */
export interface JobDefinition<S extends z.ZodType = z.ZodType> {
  family: QueueFamily;
  /** Stage jobs: the work class whose queue carries them (interactive jobs vs a batch's steps). */
  workClass?: WorkClass;
  /** BullMQ job name, unique within the family (the consumer dispatches on it). */
  name: string;
  /** Parses the payload: on the way in (producers) and on the way out (consumers). */
  schema: S;
  /** Default BullMQ options of a parsed payload (deterministic job id, priority, retries, retention). */
  options: (data: z.output<S>) => JobsOptions;
}

/** An entry, its family and name kept as literal types (consumers' handler maps are keyed by them). */
const define = <S extends z.ZodType, F extends QueueFamily, N extends string>(
  entry: JobDefinition<S> & { family: F; name: N },
): JobDefinition<S> & { family: F; name: N } => entry;

/**
 * Delay before callback retry n (index 0 = after the first attempt), the Standard Webhooks
 * schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
 */
export const CALLBACK_RETRY_SCHEDULE_MS: readonly number[] = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  14 * 3_600_000,
  20 * 3_600_000,
  24 * 3_600_000,
];

/**
 * Attempts of a callback job: the notifier's own delivery attempts (the first plus one per entry of
 * {@link CALLBACK_RETRY_SCHEDULE_MS}) and one spare, because the notifier dead-letters on its last
 * attempt itself and the spare covers an infrastructure error (Redis) in that attempt.
 */
export const CALLBACK_JOB_ATTEMPTS = CALLBACK_RETRY_SCHEDULE_MS.length + 2;

/** Name of the notifier's custom BullMQ backoff strategy: the delay it planned (schedule or Retry-After). */
export const CALLBACK_BACKOFF = "callback-schedule";

/** BullMQ refuses `:` in custom job ids; everything else in a callback's message id is kept. */
export const callbackJobIdOf = (messageId: string): string => messageId.replaceAll(":", "%3A");

/** Every job, by kind. The kind is the code's name for it; `name` is what BullMQ stores. */
export const JOB_CATALOG = {
  /** CreateJob → prior stage: sample the embeddings of one job. */
  sample: define({
    family: "prior",
    workClass: "interactive",
    name: "sample",
    schema: priorTaskSchema,
    options: (t) => jobOptions({ jobId: t.jobId, priority: t.priority, delay: delayUntil(t.startAfter) }),
  }),
  /** CreateBatch → prior stage: sample one shard of a batch. */
  sampleShard: define({
    family: "prior",
    workClass: "batch",
    name: "shard",
    schema: shardTaskSchema,
    options: (t) => jobOptions({ jobId: shardJobId(t.batchId, t.shard), priority: t.spec.priority, delay: delayUntil(t.spec.startAfter) }),
  }),
  /** Prior stage → decode stage: decode one job's embeddings, store the PNGs, finish the job. */
  decode: define({
    family: "decode",
    workClass: "interactive",
    name: "decode",
    schema: decodeTaskSchema,
    options: (t) => jobOptions({ jobId: t.jobId, priority: t.priority }),
  }),
  /** Prior stage → decode stage: decode one sampled shard and count it into its batch. */
  decodeShard: define({
    family: "decode",
    workClass: "batch",
    name: "shard",
    schema: decodeShardTaskSchema,
    options: (t) => jobOptions({ jobId: shardJobId(t.batchId, t.shard), priority: t.spec.priority }),
  }),
  /** Whoever counts a batch's last shard → decode stage: write the result manifest, complete the batch. */
  finalizeBatch: define({
    family: "decode",
    workClass: "batch",
    name: "finalize",
    schema: finalizeTaskSchema,
    options: (t) => jobOptions({ jobId: finalizeJobId(t.batchId) }),
  }),
  /** Notifier's outbox dispatcher → delivery worker: deliver one event to one endpoint. */
  deliverCallback: define({
    family: QUEUES.callbacks,
    name: "deliver",
    schema: callbackTaskSchema,
    options: (t) => ({ ...jobOptions({ jobId: callbackJobIdOf(t.messageId), attempts: CALLBACK_JOB_ATTEMPTS }), backoff: { type: CALLBACK_BACKOFF } }),
  }),
  /** DeleteUserData → data worker: erase a tenant's users, chunk by chunk from the erasure's cursor. */
  eraseUsers: define({
    family: QUEUES.data,
    name: "erase-users",
    schema: eraseUsersTaskSchema,
    options: (t) => jobOptions({ jobId: t.erasureId, attempts: 20 }),
  }),
} as const satisfies Record<string, JobDefinition>;

export type JobCatalog = typeof JOB_CATALOG;
/** A job's kind: its key in {@link JOB_CATALOG}. */
export type JobKind = keyof JobCatalog;
/** What a producer passes (schema input: defaults may be left out). */
export type JobPayload<K extends JobKind> = z.input<JobCatalog[K]["schema"]>;
/** What a consumer receives (schema output: defaults filled in). */
export type JobData<K extends JobKind> = z.output<JobCatalog[K]["schema"]>;
/** The kinds whose jobs travel in `family`. */
export type JobKindOf<F extends QueueFamily> = { [K in JobKind]: JobCatalog[K]["family"] extends F ? K : never }[JobKind];

/** Per-call changes to a job's default options. */
export interface JobOverrides {
  /** A job id other than the default (a replay of a job whose id BullMQ may still hold). */
  jobId?: string;
}

/** A job ready for BullMQ: the queue it goes to, its name, its parsed payload and options. */
export interface PreparedJob {
  /** Full queue name (`stageQueue(...)` for stage jobs, the callbacks queue otherwise). */
  queue: string;
  family: QueueFamily;
  workClass?: WorkClass;
  /** The tenant whose queue it goes to ("" for the callbacks queue, which all tenants share). */
  tenant: string;
  name: string;
  data: unknown;
  opts: JobsOptions;
}

/**
 * Parses a payload against its catalog entry and resolves its queue, name and options.
 * @throws ZodError when the payload does not match the schema (nothing is enqueued).
 */
export function prepareJob<K extends JobKind>(kind: K, payload: JobPayload<K>, overrides: JobOverrides = {}): PreparedJob {
  const entry = JOB_CATALOG[kind] as JobDefinition;
  const data = entry.schema.parse(payload) as { tenant: string };
  const opts = { ...entry.options(data), ...(overrides.jobId ? { jobId: overrides.jobId } : {}) };
  return { ...queueOfJob(kind, data.tenant), name: entry.name, data, opts };
}

/** The queue that jobs of `kind` for `tenant` go to (all tenants share the callbacks and data queues). */
export function queueOfJob(kind: JobKind, tenant: string): { queue: string; family: QueueFamily; workClass?: WorkClass; tenant: string } {
  const entry: JobDefinition = JOB_CATALOG[kind];
  if (entry.family === QUEUES.callbacks || entry.family === QUEUES.data) return { queue: entry.family, family: entry.family, tenant: "" };
  const workClass = entry.workClass ?? "interactive";
  return { queue: stageQueue(entry.family, tenant, workClass), family: entry.family, workClass, tenant };
}

/** The kind of a job found in `family` under BullMQ name `name`; undefined for a name no entry has. */
export function jobKindOf<F extends QueueFamily>(family: F, name: string): JobKindOf<F> | undefined {
  for (const [kind, entry] of Object.entries(JOB_CATALOG) as [JobKind, JobDefinition][])
    if (entry.family === family && entry.name === name) return kind as JobKindOf<F>;
  return undefined;
}

/**
 * Where producers put jobs (the role a service's queue adapter plays). Each payload is parsed
 * against the catalog before anything is written.
 */
export interface JobSink {
  add<K extends JobKind>(kind: K, payload: JobPayload<K>, overrides?: JobOverrides): Promise<void>;
  /** Adds many jobs of one kind (in chunks; BullMQ users report trouble beyond ~1k per call). */
  addBulk<K extends JobKind>(kind: K, payloads: readonly JobPayload<K>[]): Promise<void>;
}
