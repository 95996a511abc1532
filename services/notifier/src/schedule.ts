/** Retry timing of callback deliveries: pure functions of attempt number, config and a random source. */
import { CALLBACK_RETRY_SCHEDULE_MS } from "@rebeca/contracts";

/**
 * Delay before retry n (index 0 = after the first attempt): the Standard Webhooks schedule, which
 * the job catalog also sizes the callback job's attempts by.
 */
export const RETRY_SCHEDULE_MS: readonly number[] = CALLBACK_RETRY_SCHEDULE_MS;

/** The first attempt plus one per schedule entry. */
export const MAX_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1;

export interface RetryPolicy {
  /** Multiplies the schedule (tests use 0.001 or less so 5 s becomes 5 ms). @default 1 */
  scale: number;
  /** Relative jitter: each delay is drawn uniformly from ±jitter around it. @default 0.1 */
  jitter: number;
  /** Upper bound of a Retry-After delay, in ms (not scaled: it is the receiver's word). @default 86400000 */
  retryAfterCapMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { scale: 1, jitter: 0.1, retryAfterCapMs: 24 * 3_600_000 };

/**
 * The jittered, scaled schedule delay after attempt `attempt` (1-based), or null when the schedule
 * is exhausted. `random` returns values in [0, 1).
 */
export function scheduleDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number | null {
  const base = RETRY_SCHEDULE_MS[attempt - 1];
  if (base === undefined || attempt < 1) return null;
  const factor = 1 + policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base * policy.scale * factor));
}

/**
 * Parses `Retry-After`: delta seconds (`120`) or an HTTP date. Returns ms from `nowMs` (≥ 0), or
 * null when absent or unparseable.
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | null {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return null;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/**
 * Delay before the next attempt after failed attempt `attempt` (1-based): the schedule's delay, or
 * the receiver's Retry-After when larger (capped by `retryAfterCapMs`). Null = give up.
 */
export function nextRetryDelayMs(attempt: number, retryAfterMs: number | null, policy: RetryPolicy, random: () => number = Math.random): number | null {
  const scheduled = scheduleDelayMs(attempt, policy, random);
  if (scheduled === null) return null;
  if (retryAfterMs === null) return scheduled;
  return Math.max(scheduled, Math.min(retryAfterMs, policy.retryAfterCapMs));
}

/** What an HTTP status means for a delivery. */
export type StatusVerdict = "delivered" | "gone" | "retry";

/** 2xx delivers; 410 disables the endpoint; everything else (3xx included) is retried. */
export function classifyStatus(status: number): StatusVerdict {
  if (status >= 200 && status < 300) return "delivered";
  if (status === 410) return "gone";
  return "retry";
}

/** Statuses whose Retry-After header is honoured. */
export const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);
