import { UnrecoverableError, Worker, type Job, type ConnectionOptions } from "bullmq";
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import { DURATION_BUCKETS } from "./metrics.js";

export { UnrecoverableError };

/** Finer buckets for queue hops, which are milliseconds when the system keeps up. */
export const HOP_BUCKETS = [0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface StageWorkerOptions<T> {
  queue: string;
  prefix: string;
  connection: ConnectionOptions;
  /** Parallel jobs per process. @default 1 */
  concurrency?: number;
  /** Lock duration (ms), above the p99 time of one job; renewed at half. @default 60000 */
  lockDurationMs?: number;
  /** The stage's work; throw to retry, UnrecoverableError when a retry cannot help. */
  process: (data: T, job: Job) => Promise<"done" | "skipped">;
  /** Parses the payload; a failure is unrecoverable (a retry cannot fix a bad payload). */
  parse: (data: unknown) => T;
  /** Called once when a job will not be retried again, so the job record can say why. */
  onFinalFailure: (data: unknown, err: Error) => Promise<void>;
  registry: Registry;
  log: Logger;
}

/**
 * A BullMQ worker for one pipeline stage, with the metrics every stage exports: time in the
 * queue before the stage started (the hop), processing time, outcomes.
 */
export function createStageWorker<T>(o: StageWorkerOptions<T>): Worker {
  const hop = new Histogram({
    name: "rebeca_stage_queue_wait_seconds",
    help: "Time from enqueue to stage start (queue overhead per hop)",
    labelNames: ["queue"],
    buckets: HOP_BUCKETS,
    registers: [o.registry],
  });
  const duration = new Histogram({
    name: "rebeca_stage_duration_seconds",
    help: "Processing time of one job in a stage",
    labelNames: ["queue"],
    buckets: DURATION_BUCKETS,
    registers: [o.registry],
  });
  const outcomes = new Counter({
    name: "rebeca_stage_jobs_total",
    help: "Stage jobs by outcome (done, skipped, retried, failed)",
    labelNames: ["queue", "outcome"],
    registers: [o.registry],
  });

  const worker = new Worker(
    o.queue,
    async (job: Job) => {
      hop.observe({ queue: o.queue }, Math.max(0, (Date.now() - job.timestamp) / 1000));
      const stop = duration.startTimer({ queue: o.queue });
      try {
        let data: T;
        try {
          data = o.parse(job.data);
        } catch (err) {
          throw new UnrecoverableError(`bad ${o.queue} payload: ${(err as Error).message}`);
        }
        const result = await o.process(data, job);
        outcomes.inc({ queue: o.queue, outcome: result });
        return result;
      } catch (err) {
        const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        outcomes.inc({ queue: o.queue, outcome: final ? "failed" : "retried" });
        o.log.warn({ err: (err as Error).message, jobId: job.id, attempt: job.attemptsMade + 1, final }, "stage job failed");
        if (final) await o.onFinalFailure(job.data, err as Error);
        throw err;
      } finally {
        stop();
      }
    },
    {
      connection: o.connection,
      prefix: o.prefix,
      concurrency: o.concurrency ?? 1,
      lockDuration: o.lockDurationMs ?? 60_000,
      // Stage jobs are idempotent, so a stalled job is safe to redo once.
      maxStalledCount: 1,
    },
  );
  worker.on("error", (err) => o.log.error({ err: err.message, queue: o.queue }, "worker error"));
  return worker;
}
