/**
 * Outbox dispatcher: reads the outbox stream with a consumer group and turns each entry into a
 * callback task on the `callbacks` queue. The task is enqueued (idempotently: job id = message id)
 * BEFORE the entry is acknowledged and deleted, so a crash in between repeats an enqueue that
 * BullMQ ignores instead of losing a callback. Entries a crashed dispatcher left pending are taken
 * over with XAUTOCLAIM once idle for `claimIdleMs`.
 */
import type { CallbackTask } from "@rebeca/contracts";
import type { Redis } from "ioredis";
import type { Logger } from "@rebeca/platform";
import { fieldsToObject, OutboxEntryError } from "@rebeca/contracts";
import { outboxEntryToTask } from "./payload.js";

/** Role: where callback tasks go (the BullMQ `callbacks` queue in production). */
export interface CallbackSink {
  /** Must be idempotent per `task.messageId`. */
  enqueue(task: CallbackTask): Promise<void>;
}

export interface DispatcherOptions {
  /** A connection of its own: XREADGROUP BLOCK holds it. */
  redis: Redis;
  /** Outbox stream key. */
  stream: string;
  /** Consumer group. @default "notifier" */
  group?: string;
  /** This process's consumer name (stable per pod helps XPENDING reading). */
  consumer: string;
  sink: CallbackSink;
  log: Logger;
  /** Entries per read. @default 100 */
  batchSize?: number;
  /** XREADGROUP BLOCK ms; also bounds how long stop() waits. @default 1000 */
  blockMs?: number;
  /** Pending entries idle this long are claimed from their (crashed) consumer. @default 60000 */
  claimIdleMs?: number;
  /** Called with the count of entries handed to the sink (metrics, tests). */
  onDispatched?: (tasks: CallbackTask[]) => void;
}

type StreamEntry = [id: string, fields: string[] | null];

export function createDispatcher(opts: DispatcherOptions) {
  const group = opts.group ?? "notifier";
  const batch = opts.batchSize ?? 100;
  const blockMs = opts.blockMs ?? 1000;
  const claimIdleMs = opts.claimIdleMs ?? 60_000;
  const { redis, stream, log } = opts;
  let stopping = false;
  let loop: Promise<void> | null = null;
  let wake: (() => void) | null = null;

  async function ensureGroup(): Promise<void> {
    try {
      await redis.xgroup("CREATE", stream, group, "0", "MKSTREAM");
    } catch (err) {
      if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
    }
  }

  /** Enqueues then acknowledges; a failed enqueue leaves the entry pending for a later claim. */
  async function handle(entries: StreamEntry[]): Promise<void> {
    const done: string[] = [];
    const tasks: CallbackTask[] = [];
    try {
      for (const [id, fields] of entries) {
        if (!fields) {
          done.push(id);
          continue;
        }
        let task: CallbackTask;
        try {
          task = outboxEntryToTask(fieldsToObject(fields));
        } catch (err) {
          if (!(err instanceof OutboxEntryError)) throw err;
          // A malformed entry can never succeed; keeping it pending would re-claim it forever.
          log.error({ entryId: id, err: err.message }, "dropping malformed outbox entry");
          done.push(id);
          continue;
        }
        await opts.sink.enqueue(task);
        tasks.push(task);
        done.push(id);
      }
    } finally {
      // Acknowledge what was enqueued even when a later enqueue failed; the rest stays pending.
      if (done.length)
        await redis
          .multi()
          .xack(stream, group, ...done)
          .xdel(stream, ...done)
          .exec();
      if (tasks.length) opts.onDispatched?.(tasks);
    }
  }

  async function claimStale(): Promise<void> {
    let cursor = "0-0";
    do {
      const res = (await redis.xautoclaim(stream, group, opts.consumer, claimIdleMs, cursor, "COUNT", batch)) as [string, StreamEntry[], string[]?];
      cursor = res[0];
      if (res[1].length) {
        log.warn({ count: res[1].length }, "claimed outbox entries left pending by another dispatcher");
        await handle(res[1]);
      }
    } while (cursor !== "0-0" && !stopping);
  }

  async function run(): Promise<void> {
    let lastClaim = 0;
    while (!stopping) {
      try {
        if (Date.now() - lastClaim >= Math.min(claimIdleMs, 30_000)) {
          lastClaim = Date.now();
          await claimStale();
        }
        const res = (await redis.xreadgroup("GROUP", group, opts.consumer, "COUNT", batch, "BLOCK", blockMs, "STREAMS", stream, ">")) as
          [string, StreamEntry[]][] | null;
        if (res?.[0]) await handle(res[0][1]);
      } catch (err) {
        if (stopping) break;
        log.error({ err: (err as Error).message }, "outbox dispatch failed; retrying");
        // A Redis restart without persistence (or a deleted stream) loses the group: recreate it.
        if (String((err as Error).message).includes("NOGROUP")) await ensureGroup().catch(() => undefined);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 1000).unref();
        });
        wake = null;
      }
    }
  }

  return {
    /** Creates the consumer group if missing and starts the loop in the background. */
    async start(): Promise<void> {
      await ensureGroup();
      loop = run();
    },
    /** Stops after the current read (at most `blockMs`) and its enqueues. */
    async stop(): Promise<void> {
      stopping = true;
      wake?.();
      await loop;
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
