import type { Redis } from "ioredis";
import {
  ERASURE_COUNT_KINDS,
  outboxFields,
  redisKeys,
  USER_DATA_DELETED,
  USER_DATA_ERASED,
  webhookBody,
  zeroCounts,
  type AfterErasure,
  type ErasureCounts,
  type ErasureRecord,
  type ErasureState,
} from "@rebeca/contracts";
import { userDataKeys } from "./keys.js";
import { parseRecall, recallMember, recallMessages, type Recall } from "./recalls.js";

/*
 * One hash per erasure (fields below, counts as `c:<kind>`) and a list of its user ids. The
 * cursor (users done) and the counts move together in one MULTI, so a worker killed midway
 * resumes at the first chunk it had not recorded.
 */

/** How long a finished erasure's receipt and user list are kept, seconds. @default 30 days */
const DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600;

// Finish once: the state moves from running, and the callback goes to the outbox in the same step.
const FINISH = `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'endTime', ARGV[2], 'error', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
if #ARGV > 4 then redis.call('XADD', KEYS[3], '*', unpack(ARGV, 5)) end
return 1
`;

export interface NewErasure {
  tenant: string;
  requestId: string;
  userIds: readonly string[];
  afterErasure: AfterErasure;
  callbackUrl: string;
  now: string;
}

export function createErasureStore(redis: Redis, prefix: string, retentionSeconds = DEFAULT_RETENTION_SECONDS) {
  const keys = userDataKeys(prefix);
  if (!("rebecaFinishErasure" in redis)) redis.defineCommand("rebecaFinishErasure", { numberOfKeys: 3, lua: FINISH });
  const finishScript = (redis as unknown as { rebecaFinishErasure: (...a: (string | number)[]) => Promise<number> }).rebecaFinishErasure.bind(redis);

  function parse(erasureId: string, h: Record<string, string>): ErasureRecord | null {
    if (!h.state) return null;
    const counts = zeroCounts();
    for (const kind of ERASURE_COUNT_KINDS) counts[kind] = Number(h[`c:${kind}`] ?? 0);
    return {
      erasureId,
      tenant: h.tenant ?? "",
      requestId: h.requestId ?? "",
      state: h.state as ErasureState,
      afterErasure: (h.afterErasure ?? "reject") as AfterErasure,
      totalUsers: Number(h.totalUsers ?? 0),
      doneUsers: Number(h.cursor ?? 0),
      counts,
      createTime: h.createTime ?? "",
      endTime: h.endTime ?? "",
      callbackUrl: h.callbackUrl ?? "",
      error: h.error ?? "",
    };
  }

  const store = {
    keys,
    async get(erasureId: string): Promise<ErasureRecord | null> {
      return parse(erasureId, await redis.hgetall(keys.erasure(erasureId)));
    },

    /**
     * Stores a new erasure under `erasureId`, unless the tenant's request id was seen: then the
     * first erasure is returned and the new one is dropped.
     */
    async create(erasureId: string, e: NewErasure): Promise<{ created: boolean; record: ErasureRecord }> {
      const write = redis.multi().hset(keys.erasure(erasureId), {
        tenant: e.tenant,
        requestId: e.requestId,
        state: "running",
        afterErasure: e.afterErasure,
        totalUsers: e.userIds.length,
        cursor: 0,
        createTime: e.now,
        endTime: "",
        callbackUrl: e.callbackUrl,
        error: "",
      });
      for (let at = 0; at < e.userIds.length; at += 10_000) write.rpush(keys.erasureUsers(erasureId), ...e.userIds.slice(at, at + 10_000));
      await write.exec();
      const won = await redis.set(keys.erasureRequest(e.tenant, e.requestId), erasureId, "EX", retentionSeconds, "NX");
      if (won) return { created: true, record: (await store.get(erasureId))! };
      await redis.del(keys.erasure(erasureId), keys.erasureUsers(erasureId));
      const firstId = (await redis.get(keys.erasureRequest(e.tenant, e.requestId)))!;
      const first = await store.get(firstId);
      if (!first) throw new Error(`erasure ${firstId} of request ${e.requestId} is gone`);
      return { created: false, record: first };
    },

    /** The next `count` user ids from the cursor (none when the erasure is through them). */
    async nextUsers(erasureId: string, count: number): Promise<{ cursor: number; userIds: string[] }> {
      const cursor = Number((await redis.hget(keys.erasure(erasureId), "cursor")) ?? 0);
      return { cursor, userIds: await redis.lrange(keys.erasureUsers(erasureId), cursor, cursor + count - 1) };
    },

    /** Adds a chunk's counts and moves the cursor to `cursor`, in one step. */
    async advance(erasureId: string, counts: ErasureCounts, cursor: number): Promise<void> {
      const m = redis.multi();
      for (const kind of ERASURE_COUNT_KINDS) if (counts[kind] > 0) m.hincrby(keys.erasure(erasureId), `c:${kind}`, counts[kind]);
      m.hset(keys.erasure(erasureId), "cursor", cursor);
      await m.exec();
    },

    /** Records endpoints to tell, at the end, to delete their copies (before the step deletes what names them). */
    async addRecalls(erasureId: string, recalls: readonly Recall[]): Promise<void> {
      if (recalls.length === 0) return;
      await redis.sadd(keys.erasureRecalls(erasureId), ...recalls.map(recallMember));
      await redis.expire(keys.erasureRecalls(erasureId), retentionSeconds);
    },

    /**
     * Ends a running erasure (a repeat does nothing) and queues its `user_data.deleted` callback,
     * after the `user_data.erased` callbacks to the endpoints recorded with `addRecalls` (stable
     * ids: a crash between the two repeats them, and the notifier delivers each once).
     * @returns whether this call ended it
     */
    async finish(erasureId: string, state: Exclude<ErasureState, "running">, now: string, error = ""): Promise<boolean> {
      const record = await store.get(erasureId);
      if (!record || record.state !== "running") return false;
      const done = { ...record, state, endTime: now, error };
      const recalls = (await redis.smembers(keys.erasureRecalls(erasureId))).map(parseRecall);
      const messages = recallMessages(erasureId, now, recalls);
      if (messages.length > 0) {
        const m = redis.pipeline();
        for (const msg of messages)
          m.xadd(
            redisKeys(prefix).outbox(),
            "*",
            ...outboxFields("user", {
              tenant: record.tenant,
              eventId: msg.eventId,
              url: msg.url,
              type: USER_DATA_ERASED,
              time: now,
              body: msg.body,
              traceparent: "",
            }),
          );
        for (const [err] of (await m.exec()) ?? []) if (err) throw err;
      }
      const callback = record.callbackUrl
        ? outboxFields("user", {
            tenant: record.tenant,
            eventId: `${erasureId}-deleted`,
            url: record.callbackUrl,
            type: USER_DATA_DELETED,
            time: now,
            body: webhookBody(USER_DATA_DELETED, now, receiptOf(done)),
            traceparent: "",
          })
        : [];
      return (
        (await finishScript(
          keys.erasure(erasureId),
          keys.erasureUsers(erasureId),
          redisKeys(prefix).outbox(),
          state,
          now,
          error,
          retentionSeconds,
          ...callback,
        )) === 1
      );
    },
  };
  return store;
}
export type ErasureStore = ReturnType<typeof createErasureStore>;

/** The receipt as callbacks and the API show it (snake_case, like every webhook payload). */
export function receiptOf(r: ErasureRecord) {
  return {
    deletion_id: r.erasureId,
    request_id: r.requestId,
    state: r.state,
    after_erasure: r.afterErasure,
    total_users: r.totalUsers,
    done_users: r.doneUsers,
    counts: Object.fromEntries(ERASURE_COUNT_KINDS.map((k) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), r.counts[k]])),
    create_time: r.createTime,
    end_time: r.endTime,
    error: r.error,
  };
}
