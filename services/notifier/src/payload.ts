/** From an outbox entry to a callback task: pure. */
import {
  callbackTaskSchema,
  messageIdOf,
  OutboxEntryError,
  parseOutboxEntry,
  webhookBody,
  type BatchRecord,
  type CallbackTask,
  type JobRecord,
  type OutboxEntry,
} from "@rebeca/contracts";
import { nextTraceparent } from "@rebeca/platform";

/** Standard Webhooks bodies stay thin; above this many bytes outputs are left out. */
export const MAX_BODY_BYTES = 20_000;
const MAX_ERROR_MESSAGE = 1_000;

// Kept in @rebeca/contracts: the erasure (@rebeca/userdata) finds an erased event's callback job by it.
export { messageIdOf };

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
  const body = webhookBody(type, time, thinJob(job));
  if (Buffer.byteLength(body) <= MAX_BODY_BYTES) return body;
  return webhookBody(type, time, { ...thinJob(job, false), outputs_omitted: true });
}

/**
 * Turns the fields of one outbox stream entry (see `OUTBOX_FIELDS` in contracts) into a callback
 * task: a job or batch event gets its thin body built here, a per-user event carries its own.
 * @throws OutboxEntryError when a field is missing or malformed.
 */
export function outboxEntryToTask(fields: Record<string, string>): CallbackTask {
  const entry = parseOutboxEntry(fields);
  const task = callbackTaskSchema.safeParse({
    tenant: entry.tenant,
    messageId: messageIdOf(entry.tenant, entry.eventId),
    url: entry.url,
    eventId: entry.eventId,
    body: bodyOf(entry),
    ...(traceOf(entry) ? { traceparent: nextTraceparent(traceOf(entry)) } : {}),
  });
  if (!task.success)
    throw new OutboxEntryError(`outbox entry ${entry.eventId}: ${task.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return task.data;
}

function bodyOf(entry: OutboxEntry): string {
  if (entry.kind === "job") return buildCallbackBody(entry.type, entry.time, entry.job);
  if (entry.kind === "batch") return webhookBody(entry.type, entry.time, thinBatch(entry.batch));
  return entry.body;
}

/** The trace the callback continues: the job's, the batch's, or the one the per-user entry names. */
function traceOf(entry: OutboxEntry): string {
  if (entry.kind === "job") return entry.job.traceparent ?? "";
  if (entry.kind === "batch") return entry.batch.traceparent;
  return entry.traceparent;
}

/** The `data` of a batch callback: ids, state, counts and the result manifest's location. */
export function thinBatch(batch: BatchRecord) {
  return {
    batch_id: batch.batchId,
    request_id: batch.requestId,
    state: batch.state,
    labels: batch.spec?.labels ?? {},
    counts: {
      total: batch.counts.total,
      succeeded: batch.counts.succeeded,
      failed: batch.counts.failed,
      cancelled: batch.counts.cancelled,
      expired: batch.counts.expired,
    },
    result_manifest_uri: batch.resultManifestUri,
    error: batch.error,
    create_time: batch.createTime,
    end_time: batch.endTime,
  };
}
