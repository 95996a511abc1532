import type { Redis } from "ioredis";
import type { Logger } from "@rebeca/platform";
import type { JobEvent } from "@rebeca/contracts";
import { parseEvent, type JobStore } from "@rebeca/jobstore";
import { compareEventIds } from "./event-ids.js";

export interface Subscription {
  close(): void;
}

/** Where a watcher's events go: a stream with a buffer that can fill up. */
export interface WatchSink {
  /** Takes one event; false once the consumer's buffer is full (wait for `ready` before more). */
  send(event: JobEvent): boolean;
  /** Resolves when the consumer has room again, or once it is gone. */
  ready(): Promise<void>;
  /** The consumer went away (or was cut off): nothing more is sent. */
  readonly gone: boolean;
}

interface Subscriber {
  cursor: string;
  live: boolean;
  /** Live events that arrived during the replay; bounded, see `deliver`. */
  buffer: JobEvent[];
  /** Some were dropped since the replay's latest read started. */
  dropped: boolean;
  sink: WatchSink;
}

/** Events per replay page: the most a replay writes before it waits for the stream to drain. */
const REPLAY_PAGE = 500;

interface Tailer {
  /** Id of the last event read; set once `ready` resolves. */
  position: string;
  ready: Promise<void>;
  subscribers: Set<Subscriber>;
  stop: boolean;
}

/**
 * Fans a tenant's event stream out to its watchers with one blocking Redis connection per tenant
 * (not per watcher). A watcher that resumes from an id first replays the stream from there while
 * live events are buffered, then switches to live: no gap and no repeat at the seam.
 */
export function createEventHub(deps: { store: JobStore; blockingRedis: () => Redis; log: Logger; blockMs?: number; maxBuffered?: number }) {
  const tailers = new Map<string, Tailer>();
  const blockMs = deps.blockMs ?? 2000;
  /** Live events held for one replaying watcher; past it they are dropped and the replay fetches them. */
  const maxBuffered = deps.maxBuffered ?? 10_000;
  // Half the bound, so that a replay waiting for drain between pages never reaches it.
  const replayPage = Math.max(1, Math.min(REPLAY_PAGE, Math.floor(maxBuffered / 2)));

  async function runTailer(tenant: string, tailer: Tailer) {
    const redis = deps.blockingRedis();
    const key = deps.store.keys.events(tenant);
    try {
      while (!tailer.stop) {
        let result: [string, [string, string[]][]][] | null;
        try {
          result = (await redis.xread("COUNT", 500, "BLOCK", blockMs, "STREAMS", key, tailer.position)) as typeof result;
        } catch (err) {
          if (tailer.stop) break;
          deps.log.warn({ err: (err as Error).message, tenant }, "event tail read failed; retrying");
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        for (const [, entries] of result ?? []) {
          for (const [id, fields] of entries) {
            tailer.position = id;
            const event = parseEvent(tenant, id, fields);
            for (const sub of tailer.subscribers) deliver(sub, event);
          }
        }
      }
    } finally {
      redis.disconnect();
    }
  }

  function deliver(sub: Subscriber, event: JobEvent) {
    if (!sub.live) {
      sub.buffer.push(event);
      // A replay slower than the tenant's events must not hold them all: every buffered event is
      // already in the Redis stream, and the replay reads on until that stream has nothing newer,
      // so dropping them loses none (those after the drop are kept for the seam).
      if (sub.buffer.length > maxBuffered) {
        sub.buffer = [];
        sub.dropped = true;
      }
      return;
    }
    if (compareEventIds(event.eventId, sub.cursor) <= 0) return;
    sub.cursor = event.eventId;
    sub.sink.send(event);
  }

  /**
   * The tenant's tailer, created synchronously so that a subscriber is registered on it before any
   * other callback can run: a watcher closing in between can then never stop a tailer that has
   * just gained a subscriber.
   */
  function tailerFor(tenant: string): Tailer {
    const existing = tailers.get(tenant);
    if (existing) return existing;
    const tailer: Tailer = { position: "", ready: Promise.resolve(), subscribers: new Set(), stop: false };
    tailer.ready = deps.store.lastEventId(tenant).then((position) => {
      tailer.position = position;
    });
    tailers.set(tenant, tailer);
    void tailer.ready.then(() => runTailer(tenant, tailer)).catch((err) => deps.log.error({ err, tenant }, "event tailer stopped"));
    return tailer;
  }

  return {
    /**
     * Sends every event of `tenant` after `afterId` (empty = only new events) to `sink`, in order,
     * until closed. The replay goes page by page, waiting for the sink to drain between pages;
     * live events are sent as they come (the sink decides what to do when it cannot keep up).
     * Rejects on replay failures.
     */
    async subscribe(tenant: string, afterId: string, sink: WatchSink): Promise<Subscription> {
      const tailer = tailerFor(tenant);
      // A watcher of new events only starts at the tailer's position when it joins (once known);
      // a resuming watcher buffers live events until its replay is done.
      const started = tailer.position !== "";
      const sub: Subscriber = { cursor: afterId || tailer.position, live: !afterId && started, buffer: [], dropped: false, sink };
      tailer.subscribers.add(sub);
      const close = () => {
        tailer.subscribers.delete(sub);
        if (tailer.subscribers.size === 0 && tailers.get(tenant) === tailer) {
          tailer.stop = true;
          tailers.delete(tenant);
        }
      };
      try {
        await tailer.ready;
      } catch (err) {
        close();
        throw err;
      }
      if (!afterId) {
        if (sub.live) return { close };
        // The tailer had not started: it has delivered nothing yet, so its first position is ours.
        sub.cursor = tailer.position;
        sub.live = true;
        const buffered = sub.buffer;
        sub.buffer = [];
        for (const event of buffered) deliver(sub, event);
        return { close };
      }
      {
        try {
          for (;;) {
            sub.dropped = false;
            const page = await deps.store.readEvents(tenant, sub.cursor, replayPage);
            // Events dropped while this read was in flight may be newer than what it saw: read again.
            if (page.length === 0 && !sub.dropped) break;
            let room = true;
            for (const event of page) {
              sub.cursor = event.eventId;
              room = sink.send(event);
            }
            // A client far behind reads its history at its own pace instead of having it all
            // queued at once (which would also trip the bound that cuts off slow watchers).
            if (!room) await sink.ready();
            if (sink.gone) {
              close();
              return { close };
            }
          }
        } catch (err) {
          close();
          throw err;
        }
        sub.live = true;
        const buffered = sub.buffer;
        sub.buffer = [];
        for (const event of buffered) deliver(sub, event);
      }
      return { close };
    },

    /** Stops every tailer (shutdown). */
    close() {
      for (const tailer of tailers.values()) tailer.stop = true;
      tailers.clear();
    },
  };
}

export type EventHub = ReturnType<typeof createEventHub>;
