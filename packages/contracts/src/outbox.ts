/**
 * The callback outbox: a Redis stream (`redisKeys(prefix).outbox()`) of events that need a
 * callback, written by the job store (Lua scripts, atomically with the event itself, and a
 * pipeline for per-user batch callbacks) and read by the notifier's dispatcher. The field lists
 * below are the one definition both sides use: the store builds its Lua from them
 * (`@rebeca/jobstore` lua.ts) and its TypeScript writes through {@link outboxFields}; the notifier
 * reads through {@link parseOutboxEntry}.
 */
import type { BatchCounts, BatchRecord, BatchSpec, BatchStateName } from "./batches.js";
import type { JobRecord } from "./jobs.js";

/** Fields of a batch's hash, in this order; its events and outbox entries carry them by the same names. */
export const BATCH_FIELDS = [
  "doc",
  "state",
  "received",
  "total",
  "succeeded",
  "failed",
  "cancelled",
  "shards_total",
  "shards_done",
  "running_time",
  "end_time",
  "manifest",
  "error",
  "expired",
] as const;
export type BatchField = (typeof BATCH_FIELDS)[number];

/** The static part of a batch (`doc` field, JSON), fixed at creation. */
export interface BatchDoc {
  batchId: string;
  tenant: string;
  requestId: string;
  spec: BatchSpec;
  createTime: string;
  /** W3C traceparent of the request that created the batch. */
  traceparent?: string;
}

/** A batch from its hash fields (or an event's or outbox entry's fields, which carry the same names). */
export function batchFromFields(f: Record<string, string>): BatchRecord {
  const doc = JSON.parse(f.doc ?? "{}") as BatchDoc;
  const n = (k: BatchField) => Number(f[k] ?? 0);
  const counts: BatchCounts = {
    total: n("total"),
    received: n("received"),
    succeeded: n("succeeded"),
    failed: n("failed"),
    cancelled: n("cancelled"),
    expired: n("expired"),
    shardsTotal: n("shards_total"),
    shardsDone: n("shards_done"),
  };
  // Fields named one by one, not `...doc` first: a doc written by another version may carry more.
  return {
    batchId: doc.batchId,
    tenant: doc.tenant,
    requestId: doc.requestId,
    spec: doc.spec,
    createTime: doc.createTime,
    traceparent: doc.traceparent ?? "",
    state: (f.state ?? "receiving") as BatchStateName,
    counts,
    runningTime: f.running_time ?? "",
    endTime: f.end_time ?? "",
    resultManifestUri: f.manifest ?? "",
    error: f.error ? (JSON.parse(f.error) as { code: string; message: string }) : null,
    outputsDeletedTime: f.outputs_deleted_time ?? "",
  };
}

/**
 * The fields of each kind of outbox entry, in the order they are written: a job event (the job
 * record as JSON), a batch event (the batch's fields inline) or a per-user batch event (a body the
 * decode stage built).
 */
export const OUTBOX_FIELDS = {
  job: ["tenant", "eventId", "url", "kind", "type", "time", "job"],
  batch: ["tenant", "eventId", "url", "kind", "type", "time", ...BATCH_FIELDS],
  user: ["tenant", "eventId", "url", "kind", "type", "time", "body", "traceparent"],
} as const;
export type OutboxKind = keyof typeof OUTBOX_FIELDS;
export type OutboxField<K extends OutboxKind> = (typeof OUTBOX_FIELDS)[K][number];

interface OutboxEntryBase {
  tenant: string;
  /** Id of the event in the tenant's stream (or, for per-user events, a stable id of its own). */
  eventId: string;
  /** The callback URL. */
  url: string;
  /** Event type (`job.succeeded`, `batch.completed`, `user.failed`, ...). */
  type: string;
  /** Event time (ISO 8601). */
  time: string;
}
/** The job record may come from an older or newer writer: only `jobId` is relied on. */
export interface JobOutboxEntry extends OutboxEntryBase {
  kind: "job";
  job: Partial<JobRecord> & { jobId: string };
}
export interface BatchOutboxEntry extends OutboxEntryBase {
  kind: "batch";
  batch: BatchRecord;
}
export interface UserOutboxEntry extends OutboxEntryBase {
  kind: "user";
  /** The webhook body, built by the decode stage. */
  body: string;
  /** W3C traceparent for the callback; "" when none. */
  traceparent: string;
}
export type OutboxEntry = JobOutboxEntry | BatchOutboxEntry | UserOutboxEntry;

/** An outbox entry that can never become a callback (the notifier acknowledges and drops it, loudly). */
export class OutboxEntryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutboxEntryError";
  }
}

/** An entry's field/value list, in the order of {@link OUTBOX_FIELDS} (what XADD takes after the id). */
export function outboxFields<K extends OutboxKind>(kind: K, values: Omit<Record<OutboxField<K>, string>, "kind">): string[] {
  const all = { ...values, kind } as Record<string, string>;
  return OUTBOX_FIELDS[kind].flatMap((name) => [name, all[name]!]);
}

/** Field list of an XREAD entry (`[k1, v1, k2, v2, ...]`) as an object. */
export function fieldsToObject(fields: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

/**
 * Reads one outbox entry. Entries without `kind` are job events (written before the field existed).
 * @throws OutboxEntryError when a field is missing or malformed.
 */
export function parseOutboxEntry(fields: Record<string, string>): OutboxEntry {
  const kind = (fields.kind || "job") as OutboxKind;
  if (!(kind in OUTBOX_FIELDS)) throw new OutboxEntryError(`outbox entry ${fields.eventId ?? "?"} has unknown kind ${JSON.stringify(kind)}`);
  // traceparent may be empty; a batch's counters and times are empty until they happen.
  const optional = new Set<string>(["kind", "traceparent", ...BATCH_FIELDS.filter((f) => f !== "doc")]);
  const missing = OUTBOX_FIELDS[kind].filter((name) => !optional.has(name) && !fields[name]);
  if (missing.length > 0) throw new OutboxEntryError(`${kind} outbox entry ${fields.eventId ?? "?"} lacks ${missing.join(", ")}`);
  const base = { tenant: fields.tenant!, eventId: fields.eventId!, url: fields.url!, type: fields.type!, time: fields.time! };
  const malformed = (what: string, err: unknown) =>
    new OutboxEntryError(`${kind} outbox entry ${base.eventId} has an invalid ${what}: ${(err as Error).message.slice(0, 300)}`);
  if (kind === "user") return { kind, ...base, body: fields.body!, traceparent: fields.traceparent ?? "" };
  if (kind === "batch") {
    try {
      return { kind, ...base, batch: batchFromFields(fields) };
    } catch (err) {
      throw malformed("batch", err);
    }
  }
  let job: unknown;
  try {
    job = JSON.parse(fields.job!);
  } catch (err) {
    throw malformed("job record", err);
  }
  if (typeof job !== "object" || job === null || typeof (job as { jobId?: unknown }).jobId !== "string")
    throw new OutboxEntryError(`job outbox entry ${base.eventId} has a job record without jobId`);
  return { kind, ...base, job: job as JobOutboxEntry["job"] };
}
