import type { Redis } from "ioredis";
import { batchFromFields, outboxFields, redisKeys, type BatchDoc, type BatchRecord, type BatchSpec } from "@rebeca/contracts";
import { LUA_BATCH_FIELDS, luaBatchValues, luaOutboxFields } from "./lua.js";

/*
 * Batches: one hash per batch (static `doc` JSON + live counters) and one small hash per shard —
 * never one record per user. Scripts keep each change and its event atomic; a shard is counted
 * into its batch exactly once however often its stage runs.
 */

// Appends a batch event (and an outbox entry when wanted) built from the batch hash.
// KEYS: batch, events, outbox; ARGV (from 1): type, time, maxlen, outbox url ('' = none), tenant
const EMIT = `
local BATCH_FIELDS = ${LUA_BATCH_FIELDS}
local function emit(KEYS, etype, etime, maxlen, url, tenant)
  local h = redis.call('HMGET', KEYS[1], unpack(BATCH_FIELDS))
  local fields = {'type', etype, 'time', etime}
  for i, name in ipairs(BATCH_FIELDS) do
    -- A field a batch has never set (e.g. 'expired' on one from before it existed) reads as false.
    h[i] = h[i] or ''
    fields[#fields + 1] = name
    fields[#fields + 1] = h[i]
  end
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(fields))
  if url ~= '' then
    redis.call('XADD', KEYS[3], '*', ${luaOutboxFields("batch", { tenant: "tenant", eventId: "id", url: "url", type: "etype", time: "etime", ...luaBatchValues("h") })})
  end
  return id
end
`;

const CREATE = `${EMIT}
local existing = redis.call('GET', KEYS[4])
if existing then return {0, existing} end
redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[5])
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'state', 'receiving', 'received', 0, 'total', 0, 'succeeded', 0, 'failed', 0, 'cancelled', 0,
  'shards_total', 0, 'shards_done', 0, 'running_time', '', 'end_time', '', 'manifest', '', 'error', '')
redis.call('ZADD', KEYS[5], 0, ARGV[1])
emit(KEYS, 'batch.receiving', ARGV[3], ARGV[4], '', ARGV[6])
return {1, ARGV[1]}
`;

// KEYS: batch, then one shard key per shard; ARGV: receivedUpTo, then each shard's users (same order).
// Every key the script touches is in KEYS, as Redis Cluster requires (it routes and checks by them).
const ADD_SHARDS = `
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'receiving' then return state or 'missing' end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('HSET', KEYS[i], 'state', 'queued', 'users', ARGV[i]) end
end
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'received')) then redis.call('HSET', KEYS[1], 'received', ARGV[1]) end
return 'ok'
`;

// KEYS: batch, events, outbox; ARGV: total, shards_total, time, maxlen, tenant
const SEAL = `${EMIT}
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'receiving' then return {0, state or 'missing', 0} end
redis.call('HSET', KEYS[1], 'state', 'running', 'total', ARGV[1], 'shards_total', ARGV[2], 'running_time', ARGV[3])
emit(KEYS, 'batch.running', ARGV[3], ARGV[4], '', ARGV[5])
local done = tonumber(redis.call('HGET', KEYS[1], 'shards_done')) == tonumber(ARGV[2])
return {1, 'running', done and 1 or 0}
`;

// KEYS: batch, shard; ARGV: to-state. Moves a shard forward unless its batch stopped.
const SHARD_STEP = `
local bstate = redis.call('HGET', KEYS[1], 'state')
local sstate = redis.call('HGET', KEYS[2], 'state')
if not bstate or not sstate then return 'missing' end
if sstate == 'done' then return 'done' end
if bstate == 'cancelled' or bstate == 'failed' then return 'stopped' end
if ARGV[1] == 'sampling' and sstate == 'queued' then redis.call('HSET', KEYS[2], 'state', 'sampling') end
if ARGV[1] == 'decoding' and (sstate == 'queued' or sstate == 'sampling') then redis.call('HSET', KEYS[2], 'state', 'decoding') end
return 'ok'
`;

// KEYS: batch, shard, events, outbox; ARGV: succeeded, failed, cancelled, time, maxlen, tenant, url, retention, expired
const SHARD_DONE = `${EMIT}
local sstate = redis.call('HGET', KEYS[2], 'state')
if not sstate then return {0, 0} end
local function last()
  local b = redis.call('HMGET', KEYS[1], 'state', 'shards_total', 'shards_done')
  return ((b[1] == 'running' or b[1] == 'cancelled') and tonumber(b[2]) == tonumber(b[3])) and 1 or 0
end
if sstate == 'done' then return {0, last()} end
redis.call('HSET', KEYS[2], 'state', 'done')
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('HINCRBY', KEYS[1], 'succeeded', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'cancelled', ARGV[3])
if tonumber(ARGV[9]) > 0 then redis.call('HINCRBY', KEYS[1], 'expired', ARGV[9]) end
redis.call('HINCRBY', KEYS[1], 'shards_done', 1)
local evkeys = {KEYS[1], KEYS[3], KEYS[4]}
emit(evkeys, 'batch.progress', ARGV[4], ARGV[5], '', ARGV[6])
return {1, last()}
`;

// KEYS: batch, events, outbox; ARGV: to (cancelled|completed|failed|expired), time, maxlen, tenant, url, manifest, error
const FINISH = `${EMIT}
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-1, ''} end
if ARGV[1] == 'cancelled' then
  if state ~= 'receiving' and state ~= 'running' then return {0, state} end
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  emit(KEYS, 'batch.cancelled', ARGV[2], ARGV[3], ARGV[5], ARGV[4])
  return {1, 'cancelled'}
end
if state == 'completed' or state == 'failed' or state == 'expired' then return {0, state} end
if state == 'cancelled' then
  -- Finishing a cancelled batch records what did complete; its event was the cancel.
  if redis.call('HGET', KEYS[1], 'end_time') ~= '' then return {0, state} end
  redis.call('HSET', KEYS[1], 'end_time', ARGV[2], 'manifest', ARGV[6])
  return {1, state}
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'end_time', ARGV[2], 'manifest', ARGV[6], 'error', ARGV[7])
emit(KEYS, 'batch.' .. ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[4])
return {1, ARGV[1]}
`;

export interface BatchStoreOptions {
  prefix: string;
  retentionSeconds?: number;
  eventsMaxLen?: number;
  now?: () => Date;
}

/** Whether a batch event goes to the batch's callback URL. */
export function batchCallbackWanted(spec: BatchSpec, type: string, defaults: readonly string[]): boolean {
  if (!spec.callbackUrl) return false;
  return (spec.callbackEvents.length > 0 ? spec.callbackEvents : defaults).includes(type);
}

export function createBatchStore(redis: Redis, options: BatchStoreOptions) {
  const keys = redisKeys(options.prefix);
  const retention = options.retentionSeconds ?? 7 * 24 * 3600;
  const maxLen = options.eventsMaxLen ?? 100_000;
  const now = () => (options.now ?? (() => new Date()))().toISOString();

  async function get(batchId: string): Promise<BatchRecord | null> {
    const f = await redis.hgetall(keys.batch(batchId));
    return f.doc ? batchFromFields(f) : null;
  }

  return {
    keys,
    get,

    /** The batch a tenant's request id created, if any (reads only). */
    async findByRequest(tenant: string, requestId: string): Promise<BatchRecord | null> {
      const batchId = await redis.get(keys.batchRequest(tenant, requestId));
      return batchId ? get(batchId) : null;
    },

    /** Creates a batch (RECEIVING) unless the tenant's request id was seen; returns the batch id. */
    async create(doc: BatchDoc): Promise<{ created: boolean; batchId: string }> {
      const out = (await redis.eval(
        CREATE,
        5,
        keys.batch(doc.batchId),
        keys.events(doc.tenant),
        keys.outbox(),
        keys.batchRequest(doc.tenant, doc.requestId),
        keys.tenantBatches(doc.tenant),
        doc.batchId,
        JSON.stringify(doc),
        doc.createTime,
        maxLen,
        retention,
        doc.tenant,
      )) as [number, string];
      return { created: out[0] === 1, batchId: out[1] };
    },

    /** Records shards as queued and moves the intake watermark; refused once the batch left RECEIVING. */
    async addShards(batchId: string, shards: { index: number; users: number }[], receivedUpTo: number): Promise<"ok" | string> {
      const shardKeys = shards.map((s) => keys.shard(batchId, s.index));
      return (await redis.eval(
        ADD_SHARDS,
        1 + shards.length,
        keys.batch(batchId),
        ...shardKeys,
        receivedUpTo,
        ...shards.map((s) => String(s.users)),
      )) as string;
    },

    /** RECEIVING → RUNNING with the final counts; `allDone` when every shard already finished. */
    async seal(batch: { batchId: string; tenant: string }, total: number, shardsTotal: number): Promise<{ sealed: boolean; allDone: boolean }> {
      const out = (await redis.eval(
        SEAL,
        3,
        keys.batch(batch.batchId),
        keys.events(batch.tenant),
        keys.outbox(),
        total,
        shardsTotal,
        now(),
        maxLen,
        batch.tenant,
      )) as [number, string, number];
      return { sealed: out[0] === 1, allDone: out[2] === 1 };
    },

    /** Moves a shard to `to`: "ok" to go on, "done" already counted, "stopped" batch cancelled, "missing". */
    async shardStep(batchId: string, index: number, to: "sampling" | "decoding"): Promise<"ok" | "done" | "stopped" | "missing"> {
      return (await redis.eval(SHARD_STEP, 2, keys.batch(batchId), keys.shard(batchId, index), to)) as "ok" | "done" | "stopped" | "missing";
    },

    /** The shards of a batch not yet counted (`state` not done), with their user counts, among the first `total`. */
    async openShards(batchId: string, total: number): Promise<{ index: number; users: number }[]> {
      const open: { index: number; users: number }[] = [];
      // A pipeline per 1,000 shards: a batch of millions of users has tens of thousands of shards.
      for (let first = 0; first < total; first += 1000) {
        const m = redis.pipeline();
        for (let i = first; i < Math.min(total, first + 1000); i++) m.hmget(keys.shard(batchId, i), "state", "users");
        ((await m.exec()) ?? []).forEach(([err, value], k) => {
          if (err) throw err;
          const [state, users] = value as [string | null, string | null];
          if (state && state !== "done") open.push({ index: first + k, users: Number(users ?? 0) });
        });
      }
      return open;
    },

    /**
     * Counts a finished shard into its batch, once. `last` tells the caller every shard is
     * accounted for (it then enqueues the finalize step, which is idempotent).
     */
    async shardDone(
      batch: { batchId: string; tenant: string },
      index: number,
      n: { succeeded: number; failed: number; cancelled: number; expired?: number },
    ): Promise<{ counted: boolean; last: boolean }> {
      const out = (await redis.eval(
        SHARD_DONE,
        4,
        keys.batch(batch.batchId),
        keys.shard(batch.batchId, index),
        keys.events(batch.tenant),
        keys.outbox(),
        n.succeeded,
        n.failed,
        n.cancelled,
        now(),
        maxLen,
        batch.tenant,
        "",
        retention,
        n.expired ?? 0,
      )) as [number, number];
      return { counted: out[0] === 1, last: out[1] === 1 };
    },

    /**
     * Cancels (from RECEIVING/RUNNING), completes, fails or expires (deadline passed with users not
     * done) a batch, with its event and callback.
     */
    async finish(
      record: BatchRecord,
      to: "cancelled" | "completed" | "failed" | "expired",
      extra: { manifest?: string; error?: { code: string; message: string } } = {},
      defaults: readonly string[] = [],
    ): Promise<boolean> {
      const type = `batch.${to}`;
      const url = batchCallbackWanted(record.spec, type, defaults) ? record.spec.callbackUrl : "";
      const out = (await redis.eval(
        FINISH,
        3,
        keys.batch(record.batchId),
        keys.events(record.tenant),
        keys.outbox(),
        to,
        now(),
        maxLen,
        record.tenant,
        url,
        extra.manifest ?? "",
        extra.error ? JSON.stringify(extra.error) : "",
      )) as [number, string];
      if (out[0] === 1 && to !== "cancelled") await redis.expire(keys.batch(record.batchId), retention);
      return out[0] === 1;
    },

    /**
     * Queues per-user callbacks (only when a batch asked for them) through the same outbox as job
     * events. The ids are stable per batch, user and type, so a redelivered shard adds repeats that
     * the notifier drops (its callback jobs are keyed by message id).
     */
    async addUserCallbacks(tenant: string, url: string, entries: { eventId: string; type: string; body: string }[], traceparent = ""): Promise<void> {
      if (entries.length === 0) return;
      const time = now();
      const pipeline = redis.pipeline();
      for (const e of entries)
        pipeline.xadd(keys.outbox(), "*", ...outboxFields("user", { tenant, eventId: e.eventId, url, type: e.type, time, body: e.body, traceparent }));
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    },

    /** A tenant's batches, newest first. */
    async list(tenant: string, pageSize: number, after?: string): Promise<{ records: BatchRecord[]; next: string }> {
      const ids = await redis.zrevrangebylex(keys.tenantBatches(tenant), after ? `(${after}` : "+", "-", "LIMIT", 0, pageSize);
      const records = (await Promise.all(ids.map(get))).filter((r): r is BatchRecord => r !== null);
      return { records, next: ids.length === pageSize ? ids[ids.length - 1]! : "" };
    },
  };
}
export type BatchStore = ReturnType<typeof createBatchStore>;
