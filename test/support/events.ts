import type { ClientReadableStream } from "@grpc/grpc-js";
import type { Event, WatchEventsResponse } from "@rebeca/contracts/grpc";

/** Collects a WatchEvents stream; `until` resolves when the collected events satisfy a predicate. */
export function collect(stream: ClientReadableStream<WatchEventsResponse>) {
  const events: Event[] = [];
  const waiters = new Set<() => void>();
  let error: Error | null = null;
  stream.on("data", (r: WatchEventsResponse) => {
    if (r.event) events.push(r.event);
    for (const w of waiters) w();
  });
  stream.on("error", (err: Error) => {
    error = err;
    for (const w of waiters) w();
  });
  return {
    events,
    until(predicate: (events: Event[]) => boolean, timeoutMs = 60_000): Promise<Event[]> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const cancelled = error && (error as { code?: number }).code === 1;
          if (error && !cancelled) return finish(() => reject(error));
          if (predicate(events)) finish(() => resolve(events));
        };
        const finish = (fn: () => void) => {
          waiters.delete(check);
          clearTimeout(timer);
          fn();
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(new Error(`events: condition not met after ${timeoutMs} ms (${events.length} events: ${events.map((e) => e.type).join(",")})`)),
            ),
          timeoutMs,
        );
        waiters.add(check);
        check();
      });
    },
    close: () => stream.cancel(),
  };
}
