/**
 * Weighted fair sharing of a few execution lanes (model instances) between tenants: start-time
 * fair queuing. A request of `cost` (e.g. images) from tenant t gets the start tag
 * S = max(F_t, V) and advances F_t = S + cost / weight_t; lanes go to the smallest S; V is the
 * start tag last granted. A tenant that was idle starts at V — it neither banks credit nor waits
 * behind another tenant's backlog — and backlogged tenants share lanes in proportion to weight.
 */
export interface FairLanes {
  /** Resolves with a release function when the tenant may use a lane. */
  acquire(tenant: string, cost: number): Promise<() => void>;
  /**
   * Bills `tenant` for `cost` more work riding on a request it already made (a batch that grew
   * while it waited for its lane): its later requests start that much later, as if it had asked
   * for the whole at once.
   */
  charge(tenant: string, cost: number): void;
  /** Requests waiting per tenant (for metrics). */
  waiting(): Map<string, number>;
}

interface Waiter {
  tenant: string;
  start: number;
  seq: number;
  grant: () => void;
}

export function createFairLanes(opts: { lanes: number; weight?: (tenant: string) => number }): FairLanes {
  if (!Number.isInteger(opts.lanes) || opts.lanes < 1) throw new RangeError(`lanes must be a positive integer, got ${opts.lanes}`);
  const weight = opts.weight ?? (() => 1);
  const finish = new Map<string, number>();
  const queue: Waiter[] = [];
  let virtualTime = 0;
  let running = 0;
  let seq = 0;

  function dispatch() {
    while (running < opts.lanes && queue.length > 0) {
      let best = 0;
      for (let i = 1; i < queue.length; i++) {
        const a = queue[i]!;
        const b = queue[best]!;
        if (a.start < b.start || (a.start === b.start && a.seq < b.seq)) best = i;
      }
      const [next] = queue.splice(best, 1);
      virtualTime = Math.max(virtualTime, next!.start);
      running++;
      next!.grant();
    }
  }

  return {
    acquire(tenant, cost) {
      const w = weight(tenant);
      if (!(w > 0)) throw new RangeError(`weight of ${tenant} must be positive`);
      const start = Math.max(finish.get(tenant) ?? 0, virtualTime);
      finish.set(tenant, start + Math.max(cost, 0) / w);
      return new Promise((resolve) => {
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          running--;
          dispatch();
        };
        queue.push({ tenant, start, seq: seq++, grant: () => resolve(release) });
        dispatch();
      });
    },
    charge(tenant, cost) {
      const w = weight(tenant);
      if (!(w > 0)) throw new RangeError(`weight of ${tenant} must be positive`);
      finish.set(tenant, Math.max(finish.get(tenant) ?? 0, virtualTime) + Math.max(cost, 0) / w);
    },
    waiting() {
      const counts = new Map<string, number>();
      for (const w of queue) counts.set(w.tenant, (counts.get(w.tenant) ?? 0) + 1);
      return counts;
    },
  };
}

/** Weights from config JSON (`{"acme": 3}`); unknown tenants weigh 1. Throws on a bad value. */
export function weightOf(json: string): (tenant: string) => number {
  const parsed = JSON.parse(json) as Record<string, unknown>;
  for (const [tenant, w] of Object.entries(parsed)) {
    if (typeof w !== "number" || !(w > 0)) throw new Error(`TENANT_WEIGHTS: weight of ${tenant} must be a positive number`);
  }
  return (tenant) => (parsed[tenant] as number | undefined) ?? 1;
}
