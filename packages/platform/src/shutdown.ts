import type { Logger } from "pino";

export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown> | unknown;
}

/**
 * One graceful-shutdown path for SIGTERM/SIGINT. Steps run in the order given (register them in
 * reverse start order), each logged; the whole sequence is bounded by `deadlineMs`, which must be
 * shorter than the pod's terminationGracePeriodSeconds. Calling it twice runs it once.
 */
export function createShutdown(log: Logger, deadlineMs: number) {
  const steps: ShutdownStep[] = [];
  let running: Promise<void> | null = null;

  async function shutdown(reason: string): Promise<void> {
    running ??= (async () => {
      log.info({ reason, deadlineMs }, "shutting down");
      const deadline = setTimeout(() => {
        log.error({ deadlineMs }, "drain deadline passed; exiting");
        process.exit(1);
      }, deadlineMs);
      deadline.unref();
      for (const step of steps) {
        const started = Date.now();
        try {
          await step.run();
          log.info({ step: step.name, ms: Date.now() - started }, "shutdown step done");
        } catch (err) {
          log.error({ step: step.name, err }, "shutdown step failed");
        }
      }
      clearTimeout(deadline);
    })();
    return running;
  }

  return {
    /** Adds a step; steps run in the order added. */
    add(name: string, run: ShutdownStep["run"]) {
      steps.push({ name, run });
    },
    shutdown,
    /** Installs SIGTERM/SIGINT handlers that shut down and exit 0. */
    installSignalHandlers() {
      for (const signal of ["SIGTERM", "SIGINT"] as const) {
        process.once(signal, () => void shutdown(signal).then(() => process.exit(0)));
      }
    },
  };
}

/** For `main().catch(fatal(log))`: logs the error and exits non-zero. */
export function fatal(log: Pick<Logger, "fatal">) {
  return (err: unknown) => {
    log.fatal({ err }, "fatal error");
    process.exit(1);
  };
}
