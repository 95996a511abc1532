/**
 * Redis keys outside BullMQ. All carry the same hash tag as the queues so that scripts touching
 * several of them run in one Redis Cluster slot.
 */
export function redisKeys(prefix: string) {
  return {
    job: (jobId: string) => `${prefix}:job:${jobId}`,
    request: (tenant: string, requestId: string) => `${prefix}:req:${tenant}:${requestId}`,
    tenantJobs: (tenant: string) => `${prefix}:jobs:${tenant}`,
    events: (tenant: string) => `${prefix}:events:${tenant}`,
    /** Events that need a callback, consumed by the notifier's dispatcher (consumer group). */
    outbox: () => `${prefix}:outbox`,
    endpoint: (tenant: string, url: string) => `${prefix}:endpoint:${tenant}:${url}`,
    deliveries: (messageId: string) => `${prefix}:deliveries:${messageId}`,
    deadLetters: () => `${prefix}:dead-letters`,
    batch: (batchId: string) => `${prefix}:batch:${batchId}`,
    batchRequest: (tenant: string, requestId: string) => `${prefix}:breq:${tenant}:${requestId}`,
    tenantBatches: (tenant: string) => `${prefix}:batches:${tenant}`,
    /** Per-shard state, so each shard is counted into its batch exactly once. */
    shard: (batchId: string, index: number) => `${prefix}:shard:${batchId}:${index}`,
    /** A decode shard's finished chunks (first image → outputs JSON), so a successor resumes after them. */
    shardChunks: (batchId: string, index: number) => `${prefix}:shardchunks:${batchId}:${index}`,
    /** Tenants that have queues; workers watch it to open a worker per tenant queue. */
    tenants: () => `${prefix}:tenants`,
    /** Jobs and batches whose outputs have a lifetime, scored by when they may be due (the retention sweeper's index). */
    outputExpiry: () => `${prefix}:output-expiry`,
    /** Jobs and batches with a deadline, scored by it (ms): the deadline reaper's index of work that may still wait in a queue. */
    deadlines: () => `${prefix}:deadlines`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

/** Deterministic S3 keys: a retried stage overwrites its own objects instead of adding new ones. */
export const objectKeys = {
  jobPrefix: (tenant: string, jobId: string) => `tenants/${tenant}/jobs/${jobId}/`,
  /** Everything a batch stored: images, shard embeddings and results, the manifest, eval reports. */
  batchPrefix: (tenant: string, batchId: string) => `tenants/${tenant}/batches/${batchId}/`,
  embeddings: (tenant: string, jobId: string) => `tenants/${tenant}/jobs/${jobId}/embeddings.f32`,
  image: (tenant: string, jobId: string, index: number) => `tenants/${tenant}/jobs/${jobId}/images/${index}.png`,
  /** Batch outputs are keyed by the user's position in the batch (user ids may hold any character). */
  batchImage: (tenant: string, batchId: string, position: number, index: number) => `tenants/${tenant}/batches/${batchId}/users/${position}/${index}.png`,
  shardEmbeddings: (tenant: string, batchId: string, shard: number) => `tenants/${tenant}/batches/${batchId}/shards/${shard}/embeddings.f32`,
  shardResult: (tenant: string, batchId: string, shard: number) => `tenants/${tenant}/batches/${batchId}/shards/${shard}/result.jsonl`,
  batchManifest: (tenant: string, batchId: string) => `tenants/${tenant}/batches/${batchId}/${BATCH_MANIFEST_NAME}`,
  /** A batch's evaluation reports (`rebeca eval --upload`, shown by the console): beside its manifest, under eval/. */
  evalReport: (tenant: string, batchId: string, file: string) => `tenants/${tenant}/batches/${batchId}/eval/${file}`,
};

/** File name of a batch's result manifest (the last part of its key). */
const BATCH_MANIFEST_NAME = "results.jsonl";

/**
 * The URI of a batch's evaluation report from its result manifest's URI, for clients, which know
 * that URI but not the tenant: the same place as {@link objectKeys}.evalReport.
 * @throws Error when the URI is not a result manifest's.
 */
export function evalReportUri(manifestUri: string, file: string): string {
  if (!manifestUri.endsWith(`/${BATCH_MANIFEST_NAME}`)) throw new Error(`${manifestUri} is not a batch result manifest`);
  return `${manifestUri.slice(0, -BATCH_MANIFEST_NAME.length)}eval/${file}`;
}
