#!/usr/bin/env node
/** Prior worker entry point: config and wiring only (see prior-worker.ts for the parts). */
import { createLogger, fatal, loadConfig, runStageService } from "@rebeca/platform";
import { priorWorkerConfigSchema } from "./config.js";
import { createPriorWorker } from "./prior-worker.js";

const bootLog = createLogger("prior-worker");

async function main(): Promise<void> {
  const config = loadConfig(priorWorkerConfigSchema);
  const log = createLogger("prior-worker", config.LOG_LEVEL);
  // A job samples in about a millisecond at few evaluations: its Redis round trips are pipelined.
  await runStageService({ service: "prior-worker", label: "prior worker", config, log, create: createPriorWorker, pipelineStore: config.PIPELINE_STORE });
}

main().catch(fatal(bootLog));
