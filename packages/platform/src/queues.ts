import { Queue, type ConnectionOptions } from "bullmq";
import { Gauge, type Registry } from "prom-client";
import {
  prepareJob,
  queueOfJob,
  stageQueue,
  type JobKind,
  type JobOverrides,
  type JobPayload,
  type JobSink,
  type PreparedJob,
  type Stage,
  type WorkClass,
} from "@rebeca/contracts";

/** BullMQ states that are work still to do or being done (admission and backpressure count them all). */
export const BACKLOG_STATES = ["wait", "prioritized", "active", "delayed", "waiting-children"] as const;

/**
 * The backlog states work can run from now: what autoscalers must count. "delayed" is left out:
 * it holds work whose start window has not opened (CreateJob/CreateBatch `start_after`) and
 * retries waiting out their backoff, and scaling GPU nodes for either buys nothing until then.
 */
export const RUNNABLE_STATES: readonly string[] = ["wait", "prioritized", "active", "waiting-children"];

/** Jobs of a backlog that can run now (the sum over {@link RUNNABLE_STATES}). */
export const runnableOf = (byState: Record<string, number>): number => RUNNABLE_STATES.reduce((sum, s) => sum + (byState[s] ?? 0), 0);

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
 * Exports `rebeca_queue_backlog_jobs{queue,tenant,class,state}` (every backlog state, "delayed"
 * included: the queue view's held work) and `rebeca_queue_backlog_total_jobs{queue,tenant,class}`
 * (queue = the stage, class = interactive or batch): the work that can run now, what KEDA scales
 * on, read on scrape from the queues `list()` returns then. `LLEN bull:<q>:wait` alone misses
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
      for (const { labels, byState } of await read())
        for (const [state, n] of Object.entries(byState)) this.set({ queue: labels.stage, tenant: labels.tenant, class: labels.workClass ?? "", state }, n);
    },
  });
  new Gauge({
    name: "rebeca_queue_backlog_total_jobs",
    help: "Jobs per queue (stage) and tenant that can run now: waiting + prioritized + active (delayed work, held by a start window or a retry backoff, is not counted)",
    labelNames: ["queue", "tenant", "class"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { labels, byState } of await read())
        this.set({ queue: labels.stage, tenant: labels.tenant, class: labels.workClass ?? "" }, runnableOf(byState));
    },
  });
}

/** A producer-side queue handle with the shared prefix. */
export function openQueue(name: string, connection: ConnectionOptions, prefix: string): Queue {
  return new Queue(name, { connection, prefix });
}

/** Jobs per `addBulk` call: BullMQ users report heap trouble well beyond ~1k per call. */
export const ADD_BULK_CHUNK = 1000;

/**
 * Every queue a service produces to, opened on first use and kept (one handle per queue name),
 * and the producer side of the job catalog: `add(kind, payload)` parses the payload against its
 * catalog entry and puts it in the queue the entry names (the tenant's stage queue of the entry's
 * work class, or the callbacks queue) with the entry's default options.
 */
export function createQueueCache(connection: ConnectionOptions, prefix: string) {
  const queues = new Map<string, LabelledQueue>();
  function open(name: string, labels: Omit<LabelledQueue, "queue">): Queue {
    let entry = queues.get(name);
    if (!entry) {
      entry = { queue: openQueue(name, connection, prefix), ...labels };
      queues.set(name, entry);
    }
    return entry.queue;
  }
  const queueOf = (job: Omit<PreparedJob, "name" | "data" | "opts">) =>
    open(job.queue, { stage: job.family, tenant: job.tenant, ...(job.workClass ? { workClass: job.workClass } : {}) });
  return {
    /** The queue of one stage, tenant and work class (backlog checks, admission). */
    get: (stage: Stage, tenant: string, workClass: WorkClass = "interactive"): Queue =>
      open(stageQueue(stage, tenant, workClass), { stage, tenant, workClass }),
    /** The queue that jobs of `kind` for `tenant` go to (backlog checks, admission, metrics). */
    queueOf: (kind: JobKind, tenant = ""): Queue => queueOf(queueOfJob(kind, tenant)),
    async add<K extends JobKind>(kind: K, payload: JobPayload<K>, overrides?: JobOverrides): Promise<void> {
      const job = prepareJob(kind, payload, overrides);
      await queueOf(job).add(job.name, job.data, job.opts);
    },
    async addBulk<K extends JobKind>(kind: K, payloads: readonly JobPayload<K>[]): Promise<void> {
      // Parsed all first: one bad payload enqueues nothing of the call.
      const byQueue = new Map<string, PreparedJob[]>();
      for (const p of payloads) {
        const job = prepareJob(kind, p);
        const group = byQueue.get(job.queue);
        if (group) group.push(job);
        else byQueue.set(job.queue, [job]);
      }
      for (const jobs of byQueue.values()) {
        const queue = queueOf(jobs[0]!);
        for (let i = 0; i < jobs.length; i += ADD_BULK_CHUNK)
          await queue.addBulk(jobs.slice(i, i + ADD_BULK_CHUNK).map((j) => ({ name: j.name, data: j.data, opts: j.opts })));
      }
    },
    list: () => [...queues.values()],
    close: () => Promise.all([...queues.values()].map((q) => q.queue.close())),
  } satisfies JobSink & Record<string, unknown>;
}
export type QueueCache = ReturnType<typeof createQueueCache>;
