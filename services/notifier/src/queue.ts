/** BullMQ adapter of the `callbacks` queue: the producer side (sink) and the delivery worker. */
import { callbackJobIdOf, callbackTaskSchema, QUEUES, type CallbackTask, type JobSink } from "@rebeca/contracts";
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from "bullmq";
import { inSpan, type Logger } from "@rebeca/platform";
import type { DeliveryProcessor } from "./delivery.js";
import { RetryLaterError } from "./delivery.js";
import type { CallbackSink } from "./dispatcher.js";
import { scheduleDelayMs, type RetryPolicy } from "./schedule.js";

/** Enqueues tasks on the `callbacks` queue through the job catalog (parsed first, job id = message id). */
export function createQueueSink(jobs: Pick<JobSink, "add">): CallbackSink {
  return { enqueue: (task) => jobs.add("deliverCallback", task) };
}

/**
 * Re-enqueues a dead-lettered task under a fresh job id (the original job may still be kept by
 * BullMQ); the message id, hence `webhook-id`, stays the same.
 */
export async function enqueueReplay(jobs: Pick<JobSink, "add">, task: CallbackTask, now = Date.now()): Promise<void> {
  await jobs.add("deliverCallback", task, { jobId: `${callbackJobIdOf(task.messageId)}.replay.${now}` });
}

export interface DeliveryWorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency: number;
  processor: DeliveryProcessor;
  retry: RetryPolicy;
  /** Above the delivery timeout so a slow delivery is not taken as stalled. */
  lockDurationMs: number;
  log: Logger;
}

/**
 * The delivery worker on its own queue: a dead endpoint occupies delivery slots only, never a
 * stage worker. `close()` waits for in-flight deliveries.
 */
export function createDeliveryWorker(opts: DeliveryWorkerOptions): Worker {
  const worker = new Worker(
    QUEUES.callbacks,
    async (job: Job) => {
      const parsed = callbackTaskSchema.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`invalid callback task: ${parsed.error.message}`);
      const attempt = job.attemptsMade + 1;
      return inSpan("callback", parsed.data.traceparent, { "rebeca.attempt": attempt }, () => opts.processor.deliver(parsed.data, attempt));
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency,
      lockDuration: opts.lockDurationMs,
      autorun: false,
      settings: {
        backoffStrategy: (attemptsMade, _type, err) =>
          err instanceof RetryLaterError ? err.delayMs : (scheduleDelayMs(Math.max(1, attemptsMade), opts.retry) ?? 0),
      },
    },
  );
  worker.on("failed", (job, err) => {
    if (!(err instanceof RetryLaterError)) opts.log.error({ jobId: job?.id, err: err.message }, "callback job failed");
  });
  worker.on("error", (err) => opts.log.error({ err: err.message }, "callback worker error"));
  return worker;
}
