/** The loop both background sweeps of the monitor (retention, deadlines) run on. */
import type { Logger } from "@rebeca/platform";

export interface SweepLoopOptions<R> {
  /** One bounded sweep. */
  sweepOnce: () => Promise<R>;
  /** Whether a sweep handled as much as one may: then more is likely due, and the next starts at once. */
  full: (result: R) => boolean;
  /** Whether a sweep's result is worth an info line (it did something). */
  worthLogging: (result: R) => boolean;
  /** Pause after a sweep that was not full, or failed, ms. */
  intervalMs: number;
  /** What the log lines call this sweep ("retention sweep"). */
  name: string;
  log: Logger;
}

/**
 * Runs `sweepOnce` now and then again after each pause, one sweep at a time; a failed sweep is
 * logged and retried at the next interval. `stop` waits for the sweep in progress.
 */
export function createSweepLoop<R extends Record<string, number>>(o: SweepLoopOptions<R>) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const loop = () => {
    running = o
      .sweepOnce()
      .then((r) => {
        if (o.worthLogging(r)) o.log.info({ ...(r as Record<string, number>) }, o.name);
        return o.full(r) ? 0 : o.intervalMs;
      })
      .catch((err: unknown) => {
        o.log.error({ err }, `${o.name} failed; retrying at the next interval`);
        return o.intervalMs;
      })
      .then((wait) => {
        if (!stopped) timer = setTimeout(loop, wait);
      });
  };
  return {
    /** Sweeps now and then every `intervalMs`. */
    start(): void {
      stopped = false;
      loop();
    },
    /** Stops after the sweep in progress. */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
