/** BullMQ adapter of the `callbacks` queue: the producer side (sink) and the delivery worker. */
import { callbackTaskSchema, jobOptions, QUEUES, type CallbackTask } from "@rebeca/contracts";
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from "bullmq";
import type { Logger } from "@rebeca/platform";
import type { DeliveryProcessor } from "./delivery.js";
import { RetryLaterError } from "./delivery.js";
import type { CallbackSink } from "./dispatcher.js";
import { queueJobIdOf } from "./payload.js";
import { MAX_ATTEMPTS, scheduleDelayMs, type RetryPolicy } from "./schedule.js";

/** Name of the custom backoff strategy: the delay the processor planned (schedule or Retry-After). */
export const CALLBACK_BACKOFF = "callback-schedule";

/** Job options of a callback task; `jobId` makes a repeated enqueue of one message a no-op. */
export function callbackJobOptions(jobId: string) {
  // One attempt more than the processor uses: it dead-letters on its last attempt itself, and the
  // spare attempt covers an infrastructure error (Redis) in that last attempt.
  return { ...jobOptions({ jobId, attempts: MAX_ATTEMPTS + 1 }), backoff: { type: CALLBACK_BACKOFF } };
}

/** Enqueues tasks on the `callbacks` queue, parsed first (one typed job catalog). */
export function createQueueSink(queue: Queue): CallbackSink {
  return {
    async enqueue(task) {
      const data = callbackTaskSchema.parse(task);
      await queue.add("deliver", data, callbackJobOptions(queueJobIdOf(data.messageId)));
    },
  };
}

/**
 * Re-enqueues a dead-lettered task under a fresh job id (the original job may still be kept by
 * BullMQ); the message id, hence `webhook-id`, stays the same.
 */
export async function enqueueReplay(queue: Queue, task: CallbackTask, now = Date.now()): Promise<void> {
  await queue.add("deliver", callbackTaskSchema.parse(task), callbackJobOptions(`${queueJobIdOf(task.messageId)}.replay.${now}`));
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
      return opts.processor.deliver(parsed.data, job.attemptsMade + 1);
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
