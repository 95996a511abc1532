/**
 * Delivery attempts of a callback message, kept in `deliveries:<messageId>` (a Redis list, oldest
 * first, with a TTL). Depends only on ioredis and the key layout, so the gateway can import
 * {@link listDeliveries} to show attempts in its API.
 */
import { redisKeys } from "@rebeca/contracts";
import type { Redis } from "ioredis";

/** One delivery attempt as recorded. */
export interface DeliveryAttempt {
  /** 1-based attempt number within the current run (a replay starts again at 1). */
  attempt: number;
  /** ISO time the attempt started. */
  time: string;
  /** HTTP status, or null when no response came (see `error`). */
  status: number | null;
  /** Transport error, refusal or skip reason; null on a response. */
  error: string | null;
  /** Milliseconds from request start to response headers (or failure). */
  durationMs: number;
  /** What the attempt led to. */
  outcome: string;
  /** ISO time of the next attempt, or null when none is planned. */
  nextAttemptTime: string | null;
}

/** Most attempts kept per message (one run has at most 10; replays add more). */
export const MAX_KEPT_ATTEMPTS = 100;

/** Appends an attempt and refreshes the list's TTL. */
export async function recordDelivery(redis: Redis, prefix: string, messageId: string, attempt: DeliveryAttempt, ttlSeconds: number): Promise<void> {
  const key = redisKeys(prefix).deliveries(messageId);
  await redis.multi().rpush(key, JSON.stringify(attempt)).ltrim(key, -MAX_KEPT_ATTEMPTS, -1).expire(key, ttlSeconds).exec();
}

/** The recorded attempts of a message, oldest first (empty when unknown or expired). */
export async function listDeliveries(redis: Redis, prefix: string, messageId: string): Promise<DeliveryAttempt[]> {
  const raw = await redis.lrange(redisKeys(prefix).deliveries(messageId), 0, -1);
  return raw.map((r) => JSON.parse(r) as DeliveryAttempt);
}
