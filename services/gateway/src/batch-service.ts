import { randomInt } from "node:crypto";
import { status, type Metadata, type ServerReadableStream } from "@grpc/grpc-js";
import { newId, DEFAULT_BATCH_CALLBACK_EVENTS, type BatchRecord, type ShardTask } from "@rebeca/contracts";
import type { BatchServiceServer, BatchParameters, CreateBatchRequest, CreateBatchResponse } from "@rebeca/contracts/grpc-batches";
import { assertSafeKey, type BlobStore, type BlobStream } from "@rebeca/storage";
import { nextTraceparent, type Logger } from "@rebeca/platform";
import { toProtoBatch } from "./batch-mapping.js";
import { RpcError } from "./errors.js";
import { createRpcEdge } from "./rpc.js";
import { wellFormed } from "./malformed.js";
import type { GatewayMetrics } from "./metrics.js";
import { createShardBuilder, type BuiltShard } from "./shard-builder.js";
import { idChunks, splitLines, type IdChunk } from "./manifest-lines.js";
import type { BatchImageQuota } from "./batch-quota.js";
import { checkPage, createIntake, registerDeadline, registerRetention, requireId, throwViolations, traceparentOf, type IntakeDeps } from "./intake.js";
import type { Authenticate, BatchRecords, JobSink } from "./ports.js";
import { shardsOfBatch, splitByVersion } from "./batch-routing.js";
import type { ModelRouter } from "./model-routing.js";
import { checkUserIds, validateBatchParameters, ValidationError, type FieldViolation } from "./validate.js";

export interface BatchServiceDeps extends IntakeDeps {
  authenticate: Authenticate;
  batches: BatchRecords;
  /** Where shards and the finalize step are enqueued (the job catalog's producer side). */
  jobs: JobSink;
  /** Reads manifests (CreateBatchFromManifest); keys are checked against the tenant prefix first. */
  blobs: Pick<BlobStore, "getStream">;
  bucket: string;
  /** Largest manifest object read, bytes; a bigger one is refused before it is read. */
  maxManifestBytes: number;
  shardSize: number;
  maxUsersPerBatch: number;
  /** The images-per-day quota of batches (batch-quota.ts); none when unset. */
  batchImageQuota?: BatchImageQuota;
  metrics: GatewayMetrics;
  log: Logger;
  /** The tenant's canary for batches without a model_version, and the routed-users metric (batch-routing.ts). Absent: no canary for batches. */
  batchRouting?: Pick<ModelRouter, "canaryOf" | "countRouted">;
}

/** Ids per intake chunk from a manifest: shards form and are stored as the object streams in. */
const MANIFEST_CHUNK = 10_000;
/** A user id is at most 128 characters; a much longer line is a wrong object, not a manifest. */
const MAX_LINE_BYTES = 4096;

/** Size and line-length refusals, which are the caller's object's fault, as INVALID_ARGUMENT. */
function manifestRefusal(err: unknown): unknown {
  const e = err as Error & { size?: number; maxBytes?: number; line?: number; maxLineBytes?: number };
  if (e.name === "BlobTooLargeError") {
    return new ValidationError([
      {
        field: "manifest_uri",
        description: `manifest is ${e.size} bytes or more; the limit is ${e.maxBytes} bytes (MAX_MANIFEST_BYTES) — split it into several batches`,
      },
    ]);
  }
  if (e.name === "LineTooLongError")
    return new ValidationError([
      { field: "manifest_uri", description: `manifest line ${e.line} is longer than ${e.maxLineBytes} bytes; it must hold one user id per line` },
    ]);
  return err;
}

/** Maps errors raised while the manifest streams (mid-intake) the same way as those raised up front. */
async function* remapped(chunks: AsyncIterable<IdChunk>): AsyncGenerator<IdChunk> {
  try {
    yield* chunks;
  } catch (err) {
    throw manifestRefusal(err);
  }
}

function isSafeKey(key: string): boolean {
  try {
    assertSafeKey(key);
    return true;
  } catch {
    return false;
  }
}

/** The rebeca.v1.BatchService handlers. */
export function createBatchService(deps: BatchServiceDeps): BatchServiceServer {
  const { batches } = deps;

  const intake = createIntake(deps);
  const spec = (tenant: string, p: BatchParameters) =>
    intake.admit(
      tenant,
      p.modelVersion,
      (model) => validateBatchParameters(p, model, deps.limits, deps.shardSize, () => randomInt(0, 2 ** 32)),
      "parameters.callback_url",
    );

  /** Creates the batch, or finds the one this request id made before (to resume it). */
  async function open(tenant: string, p: BatchParameters, metadata: Metadata, firstUsers: number) {
    const s = await spec(tenant, p);
    // A new batch whose first users already pass the day's image quota is refused before it exists.
    await deps.batchImageQuota?.precheck(tenant, firstUsers * s.numImages, async () => (await batches.findByRequest(tenant, p.requestId)) !== null);
    const canary = p.modelVersion ? undefined : await deps.batchRouting?.canaryOf(tenant);
    if (canary) s.canary = canary;
    const { batchId } = await batches.create({
      batchId: newId("batch"),
      tenant,
      requestId: p.requestId,
      spec: s,
      createTime: new Date().toISOString(),
      traceparent: traceparentOf(metadata),
    });
    const record = await batches.get(batchId);
    if (!record) throw new RpcError(status.INTERNAL, "batch vanished");
    // Only a stored batch pins its versions against cache pruning: a refused request writes nothing.
    deps.noteVersion?.(record.spec.modelVersion);
    if (record.spec.canary) deps.noteVersion?.(record.spec.canary.version);
    await registerRetention(deps, "batch", { tenant, id: batchId, createTime: record.createTime, ttlSeconds: record.spec.outputTtlSeconds });
    await registerDeadline(deps, "batch", { tenant, id: batchId, deadline: record.spec.deadline });
    return record;
  }

  /**
   * Stores shards in three steps, so a crash between any two repeats work and never loses it:
   * shard records (a worker must find one when it takes the job), the jobs (idempotent ids),
   * then the intake watermark a resuming client starts from.
   */
  async function store(tenant: string, { batchId, spec: s, traceparent }: BatchRecord, blocks: BuiltShard[], upTo: number) {
    if (blocks.length === 0) return;
    // Reserved before anything of these blocks is stored: refused, the batch keeps what it had.
    const usersUpTo = Math.max(...blocks.map((b) => b.firstPosition + b.userIds.length));
    await deps.batchImageQuota?.reserve(tenant, { batchId, images: usersUpTo * s.numImages, numImages: s.numImages });
    const refuse = (state: string) => new RpcError(status.FAILED_PRECONDITION, `batch ${batchId} is ${state}; it takes no more users`);
    const shards = blocks.flatMap((b) => splitByVersion(tenant, s, b));
    const recorded = await batches.addShards(
      batchId,
      shards.map((sh) => ({ index: sh.index, users: sh.userIds.length })),
      0,
    );
    if (recorded !== "ok") throw refuse(recorded);
    // A version no user of the block got: its shard is done at once (the batch counts every shard).
    for (const sh of shards) if (sh.userIds.length === 0) await batches.shardDone({ batchId, tenant }, sh.index, { succeeded: 0, failed: 0, cancelled: 0 });
    const queued = shards.filter((sh) => sh.userIds.length > 0);
    await deps.jobs.addBulk(
      "sampleShard",
      queued.map((sh): ShardTask => ({
        tenant,
        batchId,
        shard: sh.index,
        firstPosition: sh.firstPosition,
        userIds: sh.userIds,
        ...(sh.positions ? { positions: sh.positions } : {}),
        spec: { ...s, modelVersion: sh.version },
        traceparent: traceparent ? nextTraceparent(traceparent) : "",
      })),
    );
    for (const sh of queued) deps.batchRouting?.countRouted(sh.version, sh.arm, sh.userIds.length);
    const advanced = await batches.addShards(batchId, [], upTo);
    if (advanced !== "ok") throw refuse(advanced);
  }

  /** Stores a batch's users from an async source of chunks, then seals the batch. */
  async function receive(tenant: string, p: BatchParameters, metadata: Metadata, source: AsyncIterable<{ offset: number; userIds: string[]; last: boolean }>) {
    // The batch is created only once the stream delivers a user (or its last chunk), after that
    // chunk is checked: a stream that breaks or goes bad before any user leaves nothing behind.
    const iterator = source[Symbol.asyncIterator]();
    let head = await iterator.next();
    for (; !head.done; head = await iterator.next()) {
      checkUserIds(head.value.userIds, head.value.offset);
      if (!Number.isInteger(head.value.offset) || head.value.offset < 0)
        throw new ValidationError([{ field: "users.offset", description: "must be a non-negative integer" }]);
      if (head.value.userIds.length > 0 || head.value.last) break;
    }
    if (head.done) {
      // No users at all: answer a repeat of a started batch with it, create nothing otherwise.
      await spec(tenant, p);
      const existing = await batches.findByRequest(tenant, p.requestId);
      if (existing && existing.state !== "receiving") return existing;
      throw new RpcError(
        status.FAILED_PRECONDITION,
        `stream ended without a chunk marked last; ${existing?.counts.received ?? 0} users are stored — resend from there under the same request_id`,
      );
    }
    const first = head.value;
    const chunks = (async function* () {
      yield first;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    })();
    const record = await open(tenant, p, metadata, first.userIds.length);
    if (record.state !== "receiving") return record; // a repeat of a finished intake: nothing to do
    const builder = createShardBuilder(record.spec.shardSize, record.counts.received, deps.maxUsersPerBatch);
    let pending: BuiltShard[] = [];
    const flush = async () => {
      const shards = pending;
      pending = [];
      await store(tenant, record, shards, builder.stored());
    };
    try {
      for await (const chunk of chunks) {
        checkUserIds(chunk.userIds, chunk.offset);
        pending.push(...builder.push(chunk.offset, chunk.userIds));
        if (!chunk.last) {
          // Store complete shards as they form, so a broken stream resumes from near where it broke.
          await flush();
          continue;
        }
        pending.push(...builder.finish());
        await flush();
        const total = builder.stored();
        const result = await batches.seal(record, total, shardsOfBatch(record.spec, total));
        if (result.allDone) await deps.jobs.add("finalizeBatch", { tenant, batchId: record.batchId });
        return (await batches.get(record.batchId))!;
      }
    } catch (err) {
      // The stream broke (or sent a bad chunk): keep the complete shards it did deliver.
      await flush().catch(() => {});
      throw err;
    }
    throw new RpcError(
      status.FAILED_PRECONDITION,
      `stream ended without a chunk marked last; ${builder.stored()} users are stored — resend from there under the same request_id`,
    );
  }

  const { unary, clientStream } = createRpcEdge(deps);

  async function own(tenant: string, batchId: string) {
    requireId("batch", "batch_id", batchId);
    const record = await batches.get(batchId);
    if (!record || record.tenant !== tenant) throw new RpcError(status.NOT_FOUND, `batch ${batchId} not found`);
    return record;
  }

  return {
    createBatch: clientStream("CreateBatch", async (tenant, call: ServerReadableStream<CreateBatchRequest, CreateBatchResponse>) => {
      const messages = call[Symbol.asyncIterator]();
      const first = await messages.next();
      const p = first.done ? undefined : wellFormed(first.value as CreateBatchRequest).parameters;
      if (!p) throw new ValidationError([{ field: "parameters", description: "the first message must carry the batch parameters" }]);
      const chunks = (async function* () {
        for (;;) {
          const m = await messages.next();
          // A cancelled call can end its reads as if the client had half-closed: it never
          // delivered what it meant to, so nothing (not even an empty batch) is created for it.
          if (m.done && call.cancelled) throw new RpcError(status.CANCELLED, "cancelled by the client");
          if (m.done) return;
          const users = wellFormed(m.value as CreateBatchRequest).users;
          if (!users) throw new ValidationError([{ field: "users", description: "every message after the first must carry users" }]);
          yield { offset: users.offset, userIds: users.userIds, last: users.last };
        }
      })();
      return { batch: toProtoBatch(await receive(tenant, p, call.metadata, chunks)) };
    }),

    createBatchFromManifest: unary("CreateBatchFromManifest", async (tenant, req, metadata) => {
      if (!req.parameters) throw new ValidationError([{ field: "parameters", description: "required" }]);
      const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(req.manifestUri);
      // A key is a literal string, but `..`, `.` or empty segments must never reach a store that
      // might normalise them (tenants/acme/../globex/... would read another tenant's object).
      if (!m || m[1] !== deps.bucket || !m[2]!.startsWith(`tenants/${tenant}/`) || !isSafeKey(m[2]!)) {
        throw new ValidationError([{ field: "manifest_uri", description: `must be s3://${deps.bucket}/tenants/${tenant}/...` }]);
      }
      let manifest: BlobStream;
      try {
        // The size is checked before a byte is read: an oversized object is refused, not drained.
        manifest = await deps.blobs.getStream(m[2]!, { maxBytes: deps.maxManifestBytes });
      } catch (err) {
        if ((err as Error).name === "BlobNotFoundError") throw new RpcError(status.NOT_FOUND, `manifest ${req.manifestUri} not found`);
        throw manifestRefusal(err);
      }
      const chunks = remapped(idChunks(splitLines(manifest.chunks, MAX_LINE_BYTES), MANIFEST_CHUNK));
      try {
        return { batch: toProtoBatch(await receive(tenant, req.parameters, metadata, chunks)) };
      } finally {
        // Intake that stops early (a bad id, a sealed batch) closes the download instead of leaving it open.
        await chunks.return(undefined);
      }
    }),

    getBatch: unary("GetBatch", async (tenant, req) => ({ batch: toProtoBatch(await own(tenant, req.batchId)) })),

    listBatches: unary("ListBatches", async (tenant, req) => {
      const v: FieldViolation[] = [];
      const pageSize = checkPage("batch", req, v);
      throwViolations(v);
      const page = await batches.list(tenant, pageSize, req.pageToken || undefined);
      return { batches: page.records.map((b) => toProtoBatch(b)), nextPageToken: page.next };
    }),

    cancelBatch: unary("CancelBatch", async (tenant, req) => {
      const record = await own(tenant, req.batchId);
      // Shards not yet started are skipped by the workers (counted as cancelled) without sampling.
      await batches.finish(record, "cancelled", {}, DEFAULT_BATCH_CALLBACK_EVENTS);
      return { batch: toProtoBatch((await batches.get(record.batchId))!) };
    }),
  };
}
