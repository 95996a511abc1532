/*
 * Per-job usage, added up before it goes to Redis. A few-evaluation job takes about a millisecond
 * of sampling, and writing its prior-seconds on its own (a pipeline and a socket write per job) cost
 * the worker's event loop about a tenth of that. Summed per tenant and written every `flushMs`, the
 * daily records get the same totals with one write per tenant per interval. A crash loses at most
 * the last interval's seconds: usage was already best effort (a failed write is logged, not retried).
 */

/** Adds usage to a tenant's counters (createUsageRecorder's `record`). */
export type RecordUsage = (tenant: string, delta: { priorSeconds: number }) => void;

export interface UsageCoalescer {
  /** Adds one job's prior-seconds to its tenant's pending sum. */
  add(tenant: string, priorSeconds: number): void;
  /** Records every pending sum now (and stops the timer when `final`). */
  flush(final?: boolean): void;
}

/**
 * Sums `add`ed prior-seconds per tenant and hands each tenant's sum to `record` at most every
 * `flushMs` (the timer runs only while something is pending, and never keeps the process alive).
 */
export function createUsageCoalescer(record: RecordUsage, flushMs: number): UsageCoalescer {
  if (!(flushMs > 0)) throw new RangeError(`flushMs must be > 0, got ${flushMs}`);
  const pending = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function flush(final = false): void {
    clearTimeout(timer);
    timer = undefined;
    closed ||= final;
    const sums = [...pending];
    pending.clear();
    for (const [tenant, priorSeconds] of sums) record(tenant, { priorSeconds });
  }

  return {
    add(tenant, priorSeconds) {
      if (closed) return record(tenant, { priorSeconds }); // after the final flush: straight through
      pending.set(tenant, (pending.get(tenant) ?? 0) + priorSeconds);
      if (!timer) timer = setTimeout(flush, flushMs).unref();
    },
    flush,
  };
}
