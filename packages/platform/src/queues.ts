import { Queue, type ConnectionOptions } from "bullmq";
import { Gauge, type Registry } from "prom-client";

/** BullMQ states that are work still to do or being done: what autoscalers must count. */
export const BACKLOG_STATES = ["wait", "prioritized", "active", "delayed", "waiting-children"] as const;

/**
 * Exports `rebeca_queue_backlog_jobs{queue,state}` and `rebeca_queue_backlog_total_jobs{queue}`,
 * read on scrape. `LLEN bull:<q>:wait` alone misses prioritized and active jobs; this counts them.
 */
export function registerBacklogMetrics(registry: Registry, queues: Queue[]): void {
  const byState = new Gauge({
    name: "rebeca_queue_backlog_jobs",
    help: "Jobs per queue and BullMQ state (waiting, prioritized, active, delayed, ...)",
    labelNames: ["queue", "state"],
    registers: [registry],
  });
  new Gauge({
    name: "rebeca_queue_backlog_total_jobs",
    help: "All unfinished jobs per queue: waiting + prioritized + active + delayed",
    labelNames: ["queue"],
    registers: [registry],
    async collect() {
      byState.reset();
      this.reset();
      for (const queue of queues) {
        const counts = await queue.getJobCounts(...BACKLOG_STATES);
        let total = 0;
        for (const state of BACKLOG_STATES) {
          const n = counts[state] ?? 0;
          total += n;
          byState.set({ queue: queue.name, state }, n);
        }
        this.set({ queue: queue.name }, total);
      }
    },
  });
}

/** A producer-side queue handle with the shared prefix. */
export function openQueue(name: string, connection: ConnectionOptions, prefix: string): Queue {
  return new Queue(name, { connection, prefix });
}
