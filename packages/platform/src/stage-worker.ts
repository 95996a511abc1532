import { UnrecoverableError, WaitingError, Worker, type Job, type ConnectionOptions } from "bullmq";
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import { JOB_CATALOG, jobKindOf, stageQueue, WORK_CLASSES, type JobData, type JobKind, type JobKindOf, type Stage, type WorkClass } from "@rebeca/contracts";
import { DURATION_BUCKETS } from "./metrics.js";
import { inSpan, recordSpan } from "./tracing.js";

export { UnrecoverableError };

/** Finer buckets for queue hops, which are milliseconds when the system keeps up. */
export const HOP_BUCKETS = [
  0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** The span each stage's jobs run in (OpenTelemetry, when on): the job stage it is. */
const STAGE_SPANS: Partial<Record<Stage, string>> = { prior: "sampling", decode: "decoding" };

/** The work of one job kind; throw to retry, UnrecoverableError when a retry cannot help. */
export type StageHandler<K extends JobKind> = (data: JobData<K>, job: Job, tenant: string) => Promise<"done" | "skipped">;

/** One handler per catalog kind of the stage's family: the compiler asks for every kind. */
export type StageHandlers<S extends Stage> = { [K in JobKindOf<S>]: StageHandler<K> };

/** A job of a stage that will not be retried again. */
export interface FinalFailure {
  /** Its catalog kind; undefined when its name is in no catalog entry of the stage. */
  kind: JobKind | undefined;
  /** The payload as stored (it may be what failed to parse). */
  data: unknown;
  err: Error;
}

export interface StageWorkerOptions<S extends Stage> {
  /** The stage served; its queues are `stageQueue(stage, tenant, class)`. */
  stage: S;
  /** Work classes this process serves (separate pools can serve them apart). @default both */
  classes?: readonly WorkClass[];
  prefix: string;
  connection: ConnectionOptions;
  /** Lists the tenants to serve; polled, so tenants added later get a worker too. */
  tenants: () => Promise<string[]>;
  /** How often `tenants` is polled (ms). @default 2000 */
  discoverEveryMs?: number;
  /** Parallel jobs per tenant queue (per class) in this process. @default 2 */
  concurrency?: number;
  /** Lock duration (ms), above the p99 time of one job; renewed at half. @default 120000 */
  lockDurationMs?: number;
  /** How often this worker looks for jobs whose worker died (lock expired). @default 30000 */
  stalledIntervalMs?: number;
  /**
   * The stage's work by job kind. Each job is dispatched by its catalog entry (family + name) and
   * its payload parsed by the entry's schema first; an unknown name or a payload that does not
   * parse fails at once (a retry cannot fix it).
   */
  handlers: StageHandlers<S>;
  /** Called once when a job will not be retried again, so its record can say why (see `createFailureRouter`). */
  onFinalFailure: (failure: FinalFailure) => Promise<void>;
  /** Told how long each handled job of a tenant took, seconds (per-tenant usage). */
  onProcessed?: (tenant: string, seconds: number) => void;
  registry: Registry;
  log: Logger;
}

export interface StageWorkers {
  /** Tenants served so far. */
  tenants(): string[];
  /**
   * Stops discovery and taking jobs, and waits for running ones (BullMQ `close`). Jobs still
   * running after `handBackAfterMs` are moved back to wait (lock released), so another worker
   * takes them at once instead of after the lock expires and a stalled check finds them.
   */
  close(opts?: { handBackAfterMs?: number }): Promise<void>;
}

/**
 * When a draining worker hands back its unfinished jobs: a quarter of the drain deadline (at
 * most 5 s) is kept for the hand-back itself and the rest of the shutdown.
 */
export function handBackAfterMs(drainDeadlineMs: number): number {
  return Math.max(0, drainDeadlineMs - Math.min(5000, drainDeadlineMs / 4));
}

/**
 * BullMQ workers for one pipeline stage: one per tenant queue and work class served (tenants
 * discovered as they appear), with the metrics every stage exports: time in the queue before the
 * stage started (the hop), processing time, outcomes. Fair sharing of the model between tenants
 * happens inside the handlers (see fair-lanes.ts); separate queues are what let a newcomer be seen
 * at all.
 */
export async function startStageWorkers<S extends Stage>(o: StageWorkerOptions<S>): Promise<StageWorkers> {
  const labels = ["queue", "tenant", "class"];
  const classes = o.classes ?? WORK_CLASSES;
  if (classes.length === 0) throw new Error(`${o.stage} worker serves no work class`);
  const hop = new Histogram({
    name: "rebeca_stage_queue_wait_seconds",
    help: "Time from enqueue to stage start (queue overhead per hop)",
    labelNames: labels,
    buckets: HOP_BUCKETS,
    registers: [o.registry],
  });
  const duration = new Histogram({
    name: "rebeca_stage_duration_seconds",
    help: "Processing time of one job in a stage",
    labelNames: labels,
    buckets: DURATION_BUCKETS,
    registers: [o.registry],
  });
  const outcomes = new Counter({
    name: "rebeca_stage_jobs_total",
    help: "Stage jobs by outcome (done, skipped, retried, failed, handed_back)",
    labelNames: [...labels, "outcome"],
    registers: [o.registry],
  });

  const workers = new Map<string, Worker>();
  /** Hand-back triggers of the jobs running now, by `<class>/<tenant>/<job id>`. */
  const running = new Map<string, () => void>();
  let closed = false;

  function open(tenant: string, workClass: WorkClass) {
    const queue = o.stage;
    const metric = { queue, tenant, class: workClass };
    const worker = new Worker(
      stageQueue(o.stage, tenant, workClass),
      async (job: Job, token?: string) => {
        let abandoned = false;
        const kind = jobKindOf(o.stage, job.name);
        const run = (async () => {
          hop.observe(metric, Math.max(0, (Date.now() - job.timestamp) / 1000));
          const traceparent = (job.data as { traceparent?: string } | undefined)?.traceparent;
          recordSpan("queue wait", traceparent, job.timestamp, Date.now(), { "rebeca.queue": queue, "rebeca.job.name": job.name });
          const stop = duration.startTimer(metric);
          try {
            if (!kind) throw new UnrecoverableError(`no ${queue} job is named ${JSON.stringify(job.name)}`);
            let data: unknown;
            try {
              data = JOB_CATALOG[kind].schema.parse(job.data);
            } catch (err) {
              throw new UnrecoverableError(`bad ${queue} ${job.name} payload: ${(err as Error).message}`);
            }
            const handler = o.handlers[kind] as StageHandler<JobKind>;
            const started = performance.now();
            const span = { "rebeca.job.name": job.name, "rebeca.tenant": tenant, "rebeca.attempt": job.attemptsMade + 1 };
            const result = await inSpan(STAGE_SPANS[queue] ?? queue, traceparent, span, () => handler(data as JobData<JobKind>, job, tenant));
            outcomes.inc({ ...metric, outcome: result });
            o.onProcessed?.(tenant, (performance.now() - started) / 1000);
            return result;
          } catch (err) {
            // A handed-back job belongs to another worker now: what this copy hits (sessions
            // closed under it) is no failure of the job.
            if (abandoned) throw err;
            const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
            outcomes.inc({ ...metric, outcome: final ? "failed" : "retried" });
            o.log.warn({ err: (err as Error).message, jobId: job.id, tenant, attempt: job.attemptsMade + 1, final }, "stage job failed");
            if (final) await o.onFinalFailure({ kind, data: job.data, err: err as Error });
            throw err;
          } finally {
            stop();
          }
        })();
        if (!token) return run;
        let handBack!: () => void;
        const handedBack = new Promise<"hand back">((resolve) => (handBack = () => resolve("hand back")));
        const key = `${workClass}/${tenant}/${job.id}`;
        running.set(key, handBack);
        try {
          const result = await Promise.race([run, handedBack]);
          if (result !== "hand back") return result;
          abandoned = true;
          // The abandoned copy ends with the process; stage jobs are idempotent if it writes first.
          run.catch(() => undefined);
          await job.moveToWait(token);
          outcomes.inc({ ...metric, outcome: "handed_back" });
          o.log.info({ jobId: job.id, tenant, queue }, "drain deadline near: job handed back");
          throw new WaitingError();
        } finally {
          running.delete(key);
        }
      },
      {
        connection: o.connection,
        prefix: o.prefix,
        concurrency: o.concurrency ?? 2,
        lockDuration: o.lockDurationMs ?? 120_000,
        stalledInterval: o.stalledIntervalMs ?? 30_000,
        // Stage jobs are idempotent, so a job whose worker died is safe to redo; a few times, since
        // a crash loop of workers should not fail the job on its second crash.
        maxStalledCount: 3,
      },
    );
    worker.on("error", (err) => o.log.error({ err: err.message, queue, tenant, class: workClass }, "worker error"));
    workers.set(`${workClass}/${tenant}`, worker);
    o.log.info({ queue, tenant, class: workClass }, "serving tenant queue");
  }

  async function discover() {
    for (const tenant of await o.tenants()) for (const c of classes) if (!closed && !workers.has(`${c}/${tenant}`)) open(tenant, c);
  }
  await discover();
  const timer = setInterval(
    () => void discover().catch((err) => o.log.warn({ err: (err as Error).message }, "tenant discovery failed")),
    o.discoverEveryMs ?? 2000,
  );

  return {
    tenants: () => [...new Set([...workers.keys()].map((k) => k.slice(k.indexOf("/") + 1)))],
    async close(opts = {}) {
      closed = true;
      clearInterval(timer);
      const handBack =
        opts.handBackAfterMs === undefined
          ? undefined
          : setTimeout(() => {
              if (running.size) o.log.info({ jobs: running.size, queue: o.stage }, "handing back unfinished jobs");
              for (const trigger of running.values()) trigger();
            }, opts.handBackAfterMs);
      try {
        await Promise.all([...workers.values()].map((w) => w.close()));
      } finally {
        clearTimeout(handBack);
      }
    },
  };
}
