import { Queue, type ConnectionOptions } from "bullmq";
import { Gauge, type Registry } from "prom-client";
import { stageQueue, type Stage, type WorkClass } from "@rebeca/contracts";

/** BullMQ states that are work still to do or being done: what autoscalers must count. */
export const BACKLOG_STATES = ["wait", "prioritized", "active", "delayed", "waiting-children"] as const;

/** A queue as metrics see it: the stage it serves, its tenant and its work class. */
export interface LabelledQueue {
  queue: Queue;
  stage: string;
  tenant: string;
  /** Interactive or batch; none for queues outside the two stages (callbacks). */
  workClass?: WorkClass;
}

/** Unfinished jobs of a queue: waiting + prioritized + active + delayed + waiting-children. */
export async function backlogOf(queue: Queue): Promise<{ total: number; byState: Record<string, number> }> {
  const byState = await queue.getJobCounts(...BACKLOG_STATES);
  return { total: Object.values(byState).reduce((a, b) => a + b, 0), byState };
}

/**
 * Exports `rebeca_queue_backlog_jobs{queue,tenant,class,state}` and
 * `rebeca_queue_backlog_total_jobs{queue,tenant,class}` (queue = the stage, class = interactive or
 * batch), read on scrape from the queues `list()` returns then. `LLEN bull:<q>:wait` alone misses
 * prioritized and active jobs; this counts them. Sum over `tenant` (and `class`, for a pool that
 * serves both) for a stage's backlog.
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
    labelNames: ["queue", "tenant", "class", "state"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { labels, byState } of await read()) for (const [state, n] of Object.entries(byState)) this.set({ queue: labels.stage, tenant: labels.tenant, class: labels.workClass ?? "", state }, n);
    },
  });
  new Gauge({
    name: "rebeca_queue_backlog_total_jobs",
    help: "All unfinished jobs per queue (stage) and tenant: waiting + prioritized + active + delayed",
    labelNames: ["queue", "tenant", "class"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { labels, total } of await read()) this.set({ queue: labels.stage, tenant: labels.tenant, class: labels.workClass ?? "" }, total);
    },
  });
}

/** A producer-side queue handle with the shared prefix. */
export function openQueue(name: string, connection: ConnectionOptions, prefix: string): Queue {
  return new Queue(name, { connection, prefix });
}

/**
 * Queue handles opened on first use and kept (one per name): the stages' per-tenant, per-class
 * queues.
 */
export function createQueueCache(connection: ConnectionOptions, prefix: string) {
  const queues = new Map<string, LabelledQueue>();
  return {
    get(stage: Stage, tenant: string, workClass: WorkClass = "interactive"): Queue {
      const name = stageQueue(stage, tenant, workClass);
      let entry = queues.get(name);
      if (!entry) {
        entry = { queue: openQueue(name, connection, prefix), stage, tenant, workClass };
        queues.set(name, entry);
      }
      return entry.queue;
    },
    list: () => [...queues.values()],
    close: () => Promise.all([...queues.values()].map((q) => q.queue.close())),
  };
}
export type QueueCache = ReturnType<typeof createQueueCache>;
