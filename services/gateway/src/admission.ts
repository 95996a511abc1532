import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { backlogOf } from "@rebeca/platform";
import type { AdmissionCheck } from "./ports.js";

export interface AdmissionOptions {
  /** The tenant's prior queues (interactive jobs, batch shards). */
  queuesOf: (tenant: string) => Queue[];
  redis: Redis;
  /** A tenant's unfinished prior jobs above which it is refused. */
  maxBacklog: number;
  /** Submissions (CreateJob, CreateBatch) per second per tenant; 0 = unlimited. */
  submissionsPerSecond: number;
  /** Redis used_memory above which everyone is refused; 0 = no budget. */
  redisMemoryBudgetBytes: number;
  /** How long counts are reused (ms). @default 1000 */
  ttlMs?: number;
}

// Token bucket per tenant: capacity = rate (one second of burst), refilled continuously.
// KEYS: bucket; ARGV: rate, now (ms). Returns {allowed, ms until a token}.
const TAKE = `
local rate = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or rate
local at = tonumber(b[2]) or now
tokens = math.min(rate, tokens + (now - at) * rate / 1000)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], 60000)
return {allowed, math.ceil((1 - tokens) * 1000 / rate)}
`;

/**
 * Admission before anything is written: the tenant's backlog, its submission rate and the Redis
 * memory budget. Past any of them the gateway answers RESOURCE_EXHAUSTED with a retry delay
 * instead of queueing. Backlog and memory are read at most once per `ttlMs`.
 */
export function createAdmission(o: AdmissionOptions): AdmissionCheck {
  const ttl = o.ttlMs ?? 1000;
  const backlogs = new Map<string, { at: number; backlog: number }>();
  let memory = { at: 0, used: 0 };
  return async (tenant) => {
    if (o.redisMemoryBudgetBytes > 0) {
      if (Date.now() - memory.at > ttl) memory = { at: Date.now(), used: Number(/used_memory:(\d+)/.exec(await o.redis.info("memory"))?.[1] ?? 0) };
      if (memory.used > o.redisMemoryBudgetBytes)
        return { reason: `Redis is past its memory budget (${memory.used} > ${o.redisMemoryBudgetBytes} bytes); retry later`, retryAfterSeconds: 30 };
    }
    let entry = backlogs.get(tenant);
    if (!entry || Date.now() - entry.at > ttl) {
      const counts = await Promise.all(o.queuesOf(tenant).map(backlogOf));
      entry = { at: Date.now(), backlog: counts.reduce((sum, b) => sum + b.total, 0) };
      backlogs.set(tenant, entry);
    }
    if (entry.backlog >= o.maxBacklog) return { reason: `tenant backlog is ${entry.backlog} jobs (limit ${o.maxBacklog}); retry later`, retryAfterSeconds: 10 };
    if (o.submissionsPerSecond > 0) {
      const [allowed, waitMs] = (await o.redis.eval(TAKE, 1, `${o.queuesOf(tenant)[0]!.opts.prefix}:rate:${tenant}`, o.submissionsPerSecond, Date.now())) as [
        number,
        number,
      ];
      if (!allowed) return { reason: `tenant is past ${o.submissionsPerSecond} submissions per second`, retryAfterSeconds: Math.max(0.001, waitMs / 1000) };
    }
    return null;
  };
}
