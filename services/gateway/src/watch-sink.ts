import type { Writable } from "node:stream";
import type { JobEvent } from "@rebeca/contracts";
import type { WatchSink } from "./event-hub.js";

/**
 * A WatchEvents stream as the hub's sink. Writes go into the stream's buffer, which drains only
 * as fast as the client reads; once more than `maxBuffered` events sit unsent there, the watcher
 * is cut off (`overflow`, called once) instead of holding the tenant's whole event flow in memory.
 * Nothing is lost: the client resumes from the last event id it received.
 */
export function createStreamSink(
  stream: Writable,
  opts: {
    maxBuffered: number;
    /** Writes one event (filters applied); false when it was filtered out. */
    write: (event: JobEvent) => boolean;
    overflow: (unsent: number) => void;
  },
): WatchSink & { stop(): void } {
  let gone = false;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
    waiters.clear();
  };
  stream.on("drain", wake);
  return {
    get gone() {
      return gone;
    },
    send(event) {
      if (gone) return true;
      if (!opts.write(event)) return true;
      // objectMode: the length counts messages queued behind the one being sent.
      if (stream.writableLength > opts.maxBuffered) {
        gone = true;
        wake();
        opts.overflow(stream.writableLength);
        return true;
      }
      return !stream.writableNeedDrain;
    },
    ready() {
      if (gone || !stream.writableNeedDrain) return Promise.resolve();
      return new Promise((resolve) => waiters.add(resolve));
    },
    /** The stream ended (client gone, or cut): release whoever waits for drain. */
    stop() {
      gone = true;
      stream.off("drain", wake);
      wake();
    },
  };
}
