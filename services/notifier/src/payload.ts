/** From an outbox entry to a callback task: pure. */
import { callbackTaskSchema, type BatchRecord, type CallbackTask, type JobRecord } from "@rebeca/contracts";
import { batchFromFields } from "@rebeca/jobstore";
import { nextTraceparent } from "@rebeca/platform";

/** Standard Webhooks bodies stay thin; above this many bytes outputs are left out. */
export const MAX_BODY_BYTES = 20_000;
const MAX_ERROR_MESSAGE = 1_000;

/** The `webhook-id` of an event's callback: stable, so every retry and replay carries the same id. */
export function messageIdOf(tenant: string, eventId: string): string {
  return `msg_${tenant}_${eventId}`;
}

/** An outbox entry that can never become a callback (it is acknowledged and dropped, loudly). */
export class OutboxEntryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutboxEntryError";
  }
}

/**
 * The `data` of a callback body: ids, state and links, never image bytes. Tolerates records with
 * missing fields (a record written by an older or newer producer still yields a callback).
 */
export function thinJob(job: Partial<JobRecord>, withOutputs = true) {
  return {
    job_id: job.jobId,
    request_id: job.requestId,
    user_id: job.userId,
    batch_id: job.batchId,
    state: job.state,
    labels: job.labels ?? {},
    error: job.error ? { code: job.error.code, message: String(job.error.message ?? "").slice(0, MAX_ERROR_MESSAGE) } : null,
    outputs: withOutputs
      ? (job.outputs ?? []).map((o) => ({
          uri: o.uri,
          width: o.width,
          height: o.height,
          sha256: o.sha256,
          bytes: o.bytes,
          embedding_uri: o.embeddingUri,
        }))
      : [],
    create_time: job.createTime,
    end_time: job.endTime,
  };
}

/**
 * The Standard Webhooks JSON body `{type, timestamp, data}`, built once so every retry sends the
 * same bytes. When it would exceed {@link MAX_BODY_BYTES} (huge label sets or many outputs) the
 * outputs are dropped and `outputs_omitted: true` tells the receiver to call GetJob.
 */
export function buildCallbackBody(type: string, time: string, job: Partial<JobRecord>): string {
  const body = JSON.stringify({ type, timestamp: time, data: thinJob(job) });
  if (Buffer.byteLength(body) <= MAX_BODY_BYTES) return body;
  return JSON.stringify({ type, timestamp: time, data: { ...thinJob(job, false), outputs_omitted: true } });
}

/**
 * Turns the fields of one outbox stream entry (`tenant`, `eventId`, `url`, `type`, `time`, `job`,
 * as written by the job store) into a callback task.
 * @throws OutboxEntryError when a field is missing or malformed.
 */
export function outboxEntryToTask(fields: Record<string, string>): CallbackTask {
  if (fields.kind === "batch") return batchEntryToTask(fields);
  if (fields.kind === "user") return userEntryToTask(fields);
  const { tenant, eventId, url, type, time, job } = fields;
  if (!tenant || !eventId || !url || !type || !time || !job) {
    throw new OutboxEntryError(`outbox entry lacks ${["tenant", "eventId", "url", "type", "time", "job"].filter((k) => !fields[k]).join(", ")}`);
  }
  let parsedJob: Partial<JobRecord>;
  try {
    parsedJob = JSON.parse(job) as Partial<JobRecord>;
  } catch (err) {
    throw new OutboxEntryError(`outbox entry ${eventId} has an invalid job record: ${(err as Error).message.slice(0, 300)}`);
  }
  if (typeof parsedJob !== "object" || parsedJob === null || typeof parsedJob.jobId !== "string") {
    throw new OutboxEntryError(`outbox entry ${eventId} has a job record without jobId`);
  }
  const task = callbackTaskSchema.safeParse({
    tenant,
    messageId: messageIdOf(tenant, eventId),
    url,
    eventId,
    body: buildCallbackBody(type, time, parsedJob),
    ...(parsedJob.traceparent ? { traceparent: nextTraceparent(parsedJob.traceparent) } : {}),
  });
  if (!task.success) throw new OutboxEntryError(`outbox entry ${eventId}: ${task.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return task.data;
}

/** Field list of an XREAD entry (`[k1, v1, k2, v2, ...]`) as an object. */
export function fieldsToObject(fields: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

/** The `data` of a batch callback: ids, state, counts and the result manifest's location. */
export function thinBatch(batch: BatchRecord) {
  return {
    batch_id: batch.batchId,
    request_id: batch.requestId,
    state: batch.state,
    labels: batch.spec?.labels ?? {},
    counts: { total: batch.counts.total, succeeded: batch.counts.succeeded, failed: batch.counts.failed, cancelled: batch.counts.cancelled },
    result_manifest_uri: batch.resultManifestUri,
    error: batch.error,
    create_time: batch.createTime,
    end_time: batch.endTime,
  };
}

/** An outbox entry of a batch event (`kind: batch`, the batch's fields inline) to a callback task. */
function batchEntryToTask(fields: Record<string, string>): CallbackTask {
  const { tenant, eventId, url, type, time } = fields;
  if (!tenant || !eventId || !url || !type || !time || !fields.doc) throw new OutboxEntryError(`batch outbox entry ${eventId ?? "?"} lacks fields`);
  let batch: BatchRecord;
  try {
    batch = batchFromFields(fields);
  } catch (err) {
    throw new OutboxEntryError(`batch outbox entry ${eventId} is malformed: ${(err as Error).message.slice(0, 300)}`);
  }
  return callbackTaskSchema.parse({
    tenant,
    messageId: messageIdOf(tenant, eventId),
    url,
    eventId,
    body: JSON.stringify({ type, timestamp: time, data: thinBatch(batch) }),
    ...(batch.traceparent ? { traceparent: nextTraceparent(batch.traceparent) } : {}),
  });
}

/** A per-user batch callback: its body was built by the decoder (user, position, images or error). */
function userEntryToTask(fields: Record<string, string>): CallbackTask {
  const { tenant, eventId, url, body } = fields;
  if (!tenant || !eventId || !url || !body) throw new OutboxEntryError(`user outbox entry ${eventId ?? "?"} lacks fields`);
  return callbackTaskSchema.parse({ tenant, messageId: messageIdOf(tenant, eventId), url, eventId, body, ...(fields.traceparent ? { traceparent: nextTraceparent(fields.traceparent) } : {}) });
}
