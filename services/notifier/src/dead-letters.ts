/**
 * Dead letters: callbacks that will not be delivered without an operator. The sorted set
 * `dead-letters` orders message ids by time; `dead-letters:data` (a hash, same hash tag) holds what
 * a replay needs. Both change in one MULTI.
 */
import { redisKeys, type CallbackTask } from "@rebeca/contracts";
import type { Redis } from "ioredis";

/** Why a callback was dead-lettered. */
export type DeadLetterReason = "exhausted" | "gone" | "endpoint_disabled" | "blocked_address" | "no_signing_secret" | "invalid_url";

export interface DeadLetter {
  task: CallbackTask;
  reason: DeadLetterReason;
  /** Human detail: last status or error. */
  detail: string;
  /** Attempts made in the run that ended here. */
  attempts: number;
  /** ISO time it was dead-lettered. */
  time: string;
}

/** Role: the dead-letter store used by the processor and the admin API. */
export interface DeadLetterStore {
  add(letter: DeadLetter): Promise<void>;
  /** Newest first. */
  list(offset: number, limit: number): Promise<{ total: number; items: DeadLetter[] }>;
  get(messageId: string): Promise<DeadLetter | null>;
  remove(messageId: string): Promise<void>;
  /** Removes the letter only if it is still the one given (a replay that failed again stays). */
  removeIfUnchanged(letter: DeadLetter): Promise<boolean>;
  count(): Promise<number>;
}

const REMOVE_IF_UNCHANGED = `
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

export function createDeadLetterStore(redis: Redis, prefix: string): DeadLetterStore {
  const set = redisKeys(prefix).deadLetters();
  const data = `${set}:data`;
  return {
    async add(letter) {
      await redis.multi().zadd(set, Date.parse(letter.time), letter.task.messageId).hset(data, letter.task.messageId, JSON.stringify(letter)).exec();
    },
    async list(offset, limit) {
      const ids = await redis.zrevrange(set, offset, offset + limit - 1);
      const [total, docs] = await Promise.all([redis.zcard(set), ids.length ? redis.hmget(data, ...ids) : Promise.resolve([])]);
      return { total, items: docs.filter((d): d is string => !!d).map((d) => JSON.parse(d) as DeadLetter) };
    },
    async get(messageId) {
      const doc = await redis.hget(data, messageId);
      return doc ? (JSON.parse(doc) as DeadLetter) : null;
    },
    async remove(messageId) {
      await redis.multi().zrem(set, messageId).hdel(data, messageId).exec();
    },
    async removeIfUnchanged(letter) {
      const removed = await redis.eval(REMOVE_IF_UNCHANGED, 2, set, data, letter.task.messageId, JSON.stringify(letter));
      return removed === 1;
    },
    count: () => redis.zcard(set),
  };
}
