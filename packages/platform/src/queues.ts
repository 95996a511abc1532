import { Queue, type ConnectionOptions } from "bullmq";
import { Gauge, type Registry } from "prom-client";

/** BullMQ states that are work still to do or being done: what autoscalers must count. */
export const BACKLOG_STATES = ["wait", "prioritized", "active", "delayed", "waiting-children"] as const;

/** A queue as metrics see it: the stage it serves and, for per-tenant queues, the tenant. */
export interface LabelledQueue {
  queue: Queue;
  stage: string;
  tenant: string;
}

/** Unfinished jobs of a queue: waiting + prioritized + active + delayed + waiting-children. */
export async function backlogOf(queue: Queue): Promise<{ total: number; byState: Record<string, number> }> {
  const byState = await queue.getJobCounts(...BACKLOG_STATES);
  return { total: Object.values(byState).reduce((a, b) => a + b, 0), byState };
}

/**
 * Exports `rebeca_queue_backlog_jobs{queue,tenant,state}` and
 * `rebeca_queue_backlog_total_jobs{queue,tenant}` (queue = the stage), read on scrape from the
 * queues `list()` returns then. `LLEN bull:<q>:wait` alone misses prioritized and active jobs;
 * this counts them. Sum over `tenant` for a stage's backlog.
 */
export function registerBacklogMetrics(registry: Registry, list: () => LabelledQueue[]): void {
  // One read of the queues per scrape, shared by both gauges (each collects from the same snapshot).
  let snapshot: Promise<{ labels: LabelledQueue; total: number; byState: Record<string, number> }[]> | null = null;
  const read = () =>
    (snapshot ??= Promise.all(list().map(async (labels) => ({ labels, ...(await backlogOf(labels.queue)) }))).finally(() => {
      setImmediate(() => (snapshot = null));
    }));
  new Gauge({
    name: "rebeca_queue_backlog_jobs",
    help: "Jobs per queue (stage), tenant and BullMQ state (waiting, prioritized, active, delayed, ...)",
    labelNames: ["queue", "tenant", "state"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { labels, byState } of await read()) for (const [state, n] of Object.entries(byState)) this.set({ queue: labels.stage, tenant: labels.tenant, state }, n);
    },
  });
  new Gauge({
    name: "rebeca_queue_backlog_total_jobs",
    help: "All unfinished jobs per queue (stage) and tenant: waiting + prioritized + active + delayed",
    labelNames: ["queue", "tenant"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { labels, total } of await read()) this.set({ queue: labels.stage, tenant: labels.tenant }, total);
    },
  });
}

/** A producer-side queue handle with the shared prefix. */
export function openQueue(name: string, connection: ConnectionOptions, prefix: string): Queue {
  return new Queue(name, { connection, prefix });
}

/**
 * Queue handles opened on first use and kept (one per name), e.g. a stage's per-tenant queues.
 */
export function createQueueCache(connection: ConnectionOptions, prefix: string) {
  const queues = new Map<string, LabelledQueue>();
  return {
    get(stage: string, tenant: string, name: string): Queue {
      let entry = queues.get(name);
      if (!entry) {
        entry = { queue: openQueue(name, connection, prefix), stage, tenant };
        queues.set(name, entry);
      }
      return entry.queue;
    },
    list: () => [...queues.values()],
    close: () => Promise.all([...queues.values()].map((q) => q.queue.close())),
  };
}
export type QueueCache = ReturnType<typeof createQueueCache>;
