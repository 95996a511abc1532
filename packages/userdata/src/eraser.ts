import type { Redis } from "ioredis";
import {
  callbackJobIdOf,
  decodeEmbeddings,
  encodeEmbeddings,
  JOB_ERROR_CODES,
  messageIdOf,
  objectKeys,
  QUEUES,
  redisKeys,
  shardJobId,
  stageQueue,
  TERMINAL_STATES,
  zeroCounts,
  type AfterErasure,
  type ErasureCounts,
  type JobRecord,
} from "@rebeca/contracts";
import type { JobStore } from "@rebeca/jobstore";
import { BlobNotFoundError, type BlobStore } from "@rebeca/storage";
import { parseBatchOutputRef, userDataKeys, type BatchOutputRef } from "./keys.js";
import { eraseShardLines, streamWithoutUsers, zeroRows } from "./lines.js";
import type { Recall } from "./recalls.js";

/** Where a step records the endpoints to tell to delete their copies (ErasureStore.addRecalls). */
export type RecallSink = (recalls: readonly Recall[]) => Promise<void>;

/** The BullMQ calls an erasure makes on a queue (bullmq's `Queue`). */
export interface ErasableQueue {
  /** 1 when removed; 0 when missing or locked by a worker (active). */
  remove(jobId: string): Promise<number>;
  getJobState(jobId: string): Promise<string>;
}

export interface EraserDeps {
  redis: Redis;
  blobs: BlobStore;
  store: Pick<JobStore, "get" | "transition">;
  prefix: string;
  /** A BullMQ queue by its full name (`stageQueue(...)`). */
  queue: (name: string) => ErasableQueue;
  /**
   * Blanks the users in the stored model files (the registry's versions: `eraseUsersFromRegistry`);
   * returns how many versions it rewrote. @default none (no registry in use)
   */
  eraseFromModels?: (userIds: readonly string[]) => Promise<number>;
  /** Stream entries read per XRANGE while looking for the users' events. @default 2000 */
  scanPage?: number;
  /** Jobs released (record, queue entries, listing) at once. @default 16 */
  concurrency?: number;
}

/** Runs `fn` over items with at most `limit` in flight; results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** What erasing one chunk of users did; `pending` when some of their work was still running. */
export interface ChunkOutcome {
  counts: ErasureCounts;
  /** Work of these users was active on a worker: it was cancelled, and the chunk must run again once it stops. */
  pending: boolean;
}

/** Erasing a job's outputs must wait for it: its job is active on a worker. */
const USER_ERASED = { code: JOB_ERROR_CODES.USER_ERASED, message: "the user's data was erased (DeleteUserData)" };

/**
 * Erases users of one tenant: every step finds its data through the per-user index (no bucket
 * scan) and is idempotent, so a chunk that crashed midway runs again from its start and counts
 * only what is still there.
 */
export function createEraser(deps: EraserDeps) {
  const { redis, blobs } = deps;
  const keys = redisKeys(deps.prefix);
  const dataKeys = userDataKeys(deps.prefix);
  const scanPage = deps.scanPage ?? 2000;
  const concurrency = deps.concurrency ?? 16;

  /** Removes a BullMQ entry if there is one; false when a worker holds it (active), so it cannot go yet. */
  async function removeEntry(queueName: string, jobId: string, counts: ErasureCounts): Promise<boolean> {
    const queue = deps.queue(queueName);
    // BullMQ's remove answers 1 for an id it does not hold: look first, so the receipt counts real entries.
    if ((await queue.getJobState(jobId)) === "unknown") return true;
    if ((await queue.remove(jobId)) === 1) {
      counts.queueEntries++;
      return true;
    }
    return (await queue.getJobState(jobId)) === "unknown";
  }

  /** The keys under a prefix (one listing; the per-user index names the prefixes, so no bucket scan). */
  async function keysUnder(prefix: string): Promise<string[]> {
    const found: string[] = [];
    for await (const o of blobs.list(prefix)) found.push(o.key);
    return found;
  }

  /** Deletes objects in as few requests as the store allows and counts them by kind. */
  async function deleteObjects(keys: readonly string[], counts: ErasureCounts): Promise<void> {
    if (keys.length === 0) return;
    await blobs.deleteMany(keys);
    for (const key of keys) {
      if (key.endsWith(".png")) counts.images++;
      else if (key.endsWith(".f32")) counts.embeddings++;
    }
  }

  async function deletePrefix(prefix: string, counts: ErasureCounts): Promise<void> {
    await deleteObjects(await keysUnder(prefix), counts);
  }

  async function getOrNull(key: string): Promise<Uint8Array | null> {
    try {
      return await blobs.get(key);
    } catch (err) {
      if (err instanceof BlobNotFoundError || (err as Error).name === "BlobNotFoundError") return null;
      throw err;
    }
  }

  /**
   * One job, up to its deletion: cancel it if it has not finished and drop its queue entries.
   * @returns its objects' keys and record (null: the job is still active on a worker and must wait)
   */
  async function releaseJob(tenant: string, jobId: string, counts: ErasureCounts): Promise<{ keys: string[]; record: JobRecord | null } | null> {
    const record = await deps.store.get(jobId);
    if (record && record.tenant !== tenant) return { keys: [], record: null }; // the index is per tenant; never another's
    if (record && !TERMINAL_STATES.has(record.state)) {
      const moved = await deps.store.transition(jobId, "cancelled", { error: USER_ERASED }, record);
      if (moved.applied) counts.jobsCancelled++;
    }
    const free = [await removeEntry(stageQueue("prior", tenant), jobId, counts), await removeEntry(stageQueue("decode", tenant), jobId, counts)];
    // An active job may still write outputs or its record: leave both until it stops.
    if (free.includes(false)) return null;
    // A finished job's record names its objects (deterministic keys): no listing. A record past
    // its retention (its objects are not), or a job that ended without outputs, is listed instead.
    const keys =
      record && record.outputs.length > 0
        ? [objectKeys.embeddings(tenant, jobId), ...record.outputs.map((o) => objectKeys.image(tenant, jobId, o.index))]
        : await keysUnder(objectKeys.jobPrefix(tenant, jobId));
    return { keys, record };
  }

  /** The users' jobs: released in parallel, then their objects deleted in bulk and their records in one transaction. */
  async function eraseJobs(tenant: string, jobIds: readonly string[], counts: ErasureCounts, recall: RecallSink): Promise<boolean> {
    const released = await mapLimit(jobIds, concurrency, (jobId) => releaseJob(tenant, jobId, counts));
    const done = released.filter((r) => r !== null);
    // Recorded before the records (which name the endpoints) go: a crash after this repeats the step.
    await recall(done.flatMap((r) => (r.record?.callbackUrl ? [{ url: r.record.callbackUrl, kind: "job" as const, id: r.record.jobId }] : [])));
    await deleteObjects(
      done.flatMap((r) => r.keys),
      counts,
    );
    const records = done.flatMap((r) => (r.record ? [r.record] : []));
    if (records.length > 0) {
      const m = redis.multi();
      for (const r of records) m.del(keys.job(r.jobId)).del(keys.request(tenant, r.requestId)).zrem(keys.tenantJobs(tenant), r.jobId);
      const results = ((await m.exec()) ?? []) as [Error | null, number][];
      for (let i = 0; i < records.length; i++) counts.jobRecords += results[i * 3]?.[1] ?? 0;
    }
    return done.length === released.length;
  }

  /** One shard of a batch: delete the users' images, zero their embedding rows, then mark their result lines erased. */
  async function eraseShard(
    tenant: string,
    batchId: string,
    shard: number,
    users: ReadonlySet<string>,
    counts: ErasureCounts,
  ): Promise<{ free: boolean; missing: boolean }> {
    const resultKey = objectKeys.shardResult(tenant, batchId, shard);
    const text = await getOrNull(resultKey);
    if (text) {
      const erased = eraseShardLines(Buffer.from(text).toString("utf8"), users);
      if (erased.removed > 0) {
        // Images, then rows, then the lines: a crash before the lines are rewritten finds the same
        // images and rows again. The lines say how many images each user had (deterministic keys).
        await deleteObjects(
          erased.images.flatMap((u) => Array.from({ length: u.count }, (_, i) => objectKeys.batchImage(tenant, batchId, u.position, i))),
          counts,
        );
        const embKey = objectKeys.shardEmbeddings(tenant, batchId, shard);
        const bytes = erased.ranges.length > 0 ? await getOrNull(embKey) : null;
        if (bytes) {
          const values = decodeEmbeddings(bytes);
          const zeroed = zeroRows(values, erased.rows, erased.ranges);
          if (zeroed > 0) {
            await blobs.put(embKey, encodeEmbeddings(values), "application/octet-stream");
            counts.embeddings += zeroed;
            counts.objectsRewritten++;
          }
        }
        await blobs.put(resultKey, Buffer.from(erased.text), "application/x-ndjson");
        counts.manifestLines += erased.removed;
        counts.objectsRewritten++;
      }
    }
    // Finished shard entries carry every user id of the shard; a queued or active one waits.
    const free = [
      await removeEntry(stageQueue("prior", tenant, "batch"), shardJobId(batchId, shard), counts),
      await removeEntry(stageQueue("decode", tenant, "batch"), shardJobId(batchId, shard), counts),
    ];
    return { free: !free.includes(false), missing: text === null };
  }

  async function eraseManifest(tenant: string, batchId: string, users: ReadonlySet<string>, counts: ErasureCounts): Promise<void> {
    const key = objectKeys.batchManifest(tenant, batchId);
    let source;
    try {
      source = await blobs.getStream(key);
    } catch (err) {
      if ((err as Error).name === "BlobNotFoundError") return;
      throw err;
    }
    // Read it once to see whether it holds the users at all, so a repeat rewrites nothing.
    let found = 0;
    for await (const _ of streamWithoutUsers(source.chunks, users, () => found++));
    if (found === 0) return;
    const again = await blobs.getStream(key);
    await blobs.putStream(
      key,
      streamWithoutUsers(again.chunks, users, () => counts.manifestLines++),
      "application/x-ndjson",
    );
    counts.objectsRewritten++;
  }

  async function eraseBatches(
    tenant: string,
    refs: readonly BatchOutputRef[],
    users: ReadonlySet<string>,
    counts: ErasureCounts,
    recall: RecallSink,
  ): Promise<boolean> {
    const byBatch = new Map<string, BatchOutputRef[]>();
    for (const r of refs) byBatch.set(r.batchId, [...(byBatch.get(r.batchId) ?? []), r]);
    // A batch's callback endpoint got its events, per-user callbacks and manifest link: tell it too.
    const docs = byBatch.size > 0 ? await redis.pipeline([...byBatch.keys()].map((id) => ["hget", keys.batch(id), "doc"])).exec() : [];
    await recall(
      [...byBatch.keys()].flatMap((id, i) => {
        const doc = docs?.[i]?.[1] as string | null;
        const url = doc ? (JSON.parse(doc) as { spec?: { callbackUrl?: string } }).spec?.callbackUrl : "";
        return url ? [{ url, kind: "batch" as const, id }] : [];
      }),
    );
    let free = true;
    for (const [batchId, list] of byBatch) {
      for (const shard of new Set(list.map((r) => r.shard))) {
        // A shard with no result yet (its decode has not finished) has no lines to go by: list its users' folders.
        const found = await eraseShard(tenant, batchId, shard, users, counts);
        if (found.missing)
          for (const r of list.filter((r) => r.shard === shard)) await deletePrefix(`tenants/${tenant}/batches/${batchId}/users/${r.position}/`, counts);
        free = found.free && free;
      }
      await eraseManifest(tenant, batchId, users, counts);
    }
    return free;
  }

  /**
   * Deletes the entries of a stream that `match` picks, page by page, after the callback job each
   * may have become: the callbacks queue keeps a delivered one (its body names the user) for an
   * hour. `eventIdOf` is the id its callback is known by. @returns false when a callback is being
   * delivered right now (its event stays until the step is retried)
   */
  async function deleteEvents(
    stream: string,
    match: (fields: Record<string, string>) => boolean,
    eventIdOf: (id: string, fields: Record<string, string>) => string,
    tenant: string,
    counts: ErasureCounts,
  ): Promise<boolean> {
    let free = true;
    let start = "-";
    for (;;) {
      const entries = await redis.xrange(stream, start, "+", "COUNT", scanPage);
      if (entries.length === 0) return free;
      const doomed: string[] = [];
      for (const [id, list] of entries) {
        const fields: Record<string, string> = {};
        for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]!] = list[i + 1]!;
        if (!match(fields)) continue;
        if (await removeEntry(QUEUES.callbacks, callbackJobIdOf(messageIdOf(tenant, eventIdOf(id, fields))), counts)) doomed.push(id);
        else free = false;
      }
      if (doomed.length > 0) counts.events += await redis.xdel(stream, ...doomed);
      if (entries.length < scanPage) return free;
      start = `(${entries[entries.length - 1]![0]}`;
    }
  }

  /** Whether an event's job or callback body names one of the users (cheap substring check first). */
  function namesUser(fields: Record<string, string>, users: ReadonlySet<string>): boolean {
    if (fields.job && fields.job.includes('"userId"')) return users.has((JSON.parse(fields.job) as { userId?: string }).userId ?? "");
    if (fields.body && fields.body.includes('"user_id"')) return users.has((JSON.parse(fields.body) as { data?: { user_id?: string } }).data?.user_id ?? "");
    return false;
  }

  return {
    /**
     * Erases `userIds` of `tenant`: blanks them for intake and the models first (later requests
     * get `mode`), then cancels and removes their jobs, deletes their images and embeddings,
     * rewrites the result manifests and shard results they are in, deletes their events, and
     * finally their index.
     */
    async eraseUsers(tenant: string, userIds: readonly string[], mode: AfterErasure, recall: RecallSink = async () => {}): Promise<ChunkOutcome> {
      const counts = zeroCounts();
      if (userIds.length === 0) return { counts, pending: false };
      const users = new Set(userIds);
      await redis.hset(dataKeys.erased(tenant), ...userIds.flatMap((u) => [u, mode]));
      counts.modelVersionsRewritten += (await deps.eraseFromModels?.(userIds)) ?? 0;

      const lookup = redis.pipeline();
      for (const u of userIds) lookup.smembers(dataKeys.userJobs(tenant, u)).smembers(dataKeys.userBatchOutputs(tenant, u));
      const found = ((await lookup.exec()) ?? []).map(([err, v]) => {
        if (err) throw err;
        return v as string[];
      });
      const jobIds = found.filter((_, i) => i % 2 === 0).flat();
      const refs = found
        .filter((_, i) => i % 2 === 1)
        .flat()
        .map(parseBatchOutputRef);

      let free = await eraseJobs(tenant, jobIds, counts, recall);
      free = (await eraseBatches(tenant, refs, users, counts, recall)) && free;
      // A tenant event's callback is known by the event's id; an outbox entry names its own (per-user batch callbacks).
      free =
        (await deleteEvents(
          keys.events(tenant),
          (f) => namesUser(f, users),
          (id) => id,
          tenant,
          counts,
        )) && free;
      free =
        (await deleteEvents(
          keys.outbox(),
          (f) => f.tenant === tenant && namesUser(f, users),
          (_, f) => f.eventId ?? "",
          tenant,
          counts,
        )) && free;
      if (!free) return { counts, pending: true };
      await redis.del(...userIds.flatMap((u) => [dataKeys.userJobs(tenant, u), dataKeys.userBatchOutputs(tenant, u)]));
      return { counts, pending: false };
    },
  };
}
export type Eraser = ReturnType<typeof createEraser>;
