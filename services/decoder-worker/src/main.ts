#!/usr/bin/env node
/** Decoder worker entry point: config and wiring only (see decoder-worker.ts for the parts). */
import { createLogger, fatal, loadConfig, runStageService } from "@rebeca/platform";
import { decoderWorkerConfigSchema } from "./config.js";
import { createDecoderWorker } from "./decoder-worker.js";

const bootLog = createLogger("decoder-worker");

async function main(): Promise<void> {
  const config = loadConfig(decoderWorkerConfigSchema);
  const log = createLogger("decoder-worker", config.LOG_LEVEL);
  await runStageService({ service: "decoder-worker", label: "decoder worker", config, log, create: createDecoderWorker });
}

main().catch(fatal(bootLog));
