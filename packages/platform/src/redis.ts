import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { redisTargetOf } from "./redis-url.js";

/**
 * Redis connections with deliberate settings per role:
 * - `producer` (gateway requests) fails fast: no offline queue, one retry per request, so a
 *   Redis outage becomes UNAVAILABLE instead of requests piling up in memory;
 * - `worker` waits: BullMQ workers need `maxRetriesPerRequest: null` to survive a restart.
 * The one factory of every service's connections (BullMQ's included: they are handed these), so
 * every URL form of `redisTargetOf` (one node, TLS, Sentinel) works everywhere.
 */
export function createRedis(
  url: string,
  role: "producer" | "worker",
  log: Logger,
  name: string = role,
  /** Extra ioredis options (e.g. `enableAutoPipelining` for a connection without blocking commands). */
  extra: Pick<RedisOptions, "enableAutoPipelining"> = {},
): Redis {
  const options: RedisOptions =
    role === "producer" ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectionName: name } : { maxRetriesPerRequest: null, connectionName: name };
  const target = redisTargetOf(url);
  const all: RedisOptions = {
    ...target.options,
    ...options,
    ...extra,
    retryStrategy: (n) => Math.min(n * 200, 2000),
    // A primary demoted by a failover answers writes with READONLY: reconnect (through the
    // sentinels, to the new primary) and resend the command instead of failing it.
    reconnectOnError: (err) => (err.message.startsWith("READONLY") ? 2 : false),
  };
  const redis = target.url ? new Redis(target.url, all) : new Redis(all);
  // An unhandled 'error' event would crash the process; reconnects are ioredis' job.
  redis.on("error", (err) => log.warn({ err: err.message, connection: name }, "redis connection error"));
  return redis;
}

/** Resolves once the connection is ready (producers have no offline queue to wait in). */
export async function waitReady(redis: Redis, timeoutMs = 10000): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis not ready after ${timeoutMs} ms`)), timeoutMs);
    redis.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
