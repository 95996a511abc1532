/*
 * A sampler thread: loads the prior versions (sha256-verified) and samples on request. Sampling
 * runs here, off the worker's event loop, so that Redis/S3 I/O and BullMQ lock renewal on the
 * main thread never delay the next model step, and a long batch never starves the lock.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { SessionOptions } from "@rebeca/inference";
import { sampleWith, type LoadedPrior, type SampleJob, type SampleOutcome } from "./backend.js";
import { loadPriors } from "./models.js";

export interface ThreadInit {
  modelsDir: string;
  versions: string[];
  session: SessionOptions;
}

export type ToThread = { type: "sample"; id: number; job: SampleJob } | { type: "cancel"; id: number };
export type FromThread =
  | { type: "ready"; models: { version: string; embeddingDim: number; info: Record<string, unknown> }[] }
  | { type: "fatal"; message: string }
  | { type: "ok"; id: number; outcome: SampleOutcome }
  | { type: "error"; id: number; message: string; aborted: boolean };

const port = parentPort!;
const init = workerData as ThreadInit;
const running = new Map<number, AbortController>();

async function main() {
  let models: Map<string, LoadedPrior>;
  const infos: { version: string; embeddingDim: number; info: Record<string, unknown> }[] = [];
  try {
    models = await loadPriors(init.modelsDir, init.versions, init.session, (info) => infos.push(info));
  } catch (err) {
    port.postMessage({ type: "fatal", message: (err as Error).message } satisfies FromThread);
    return;
  }
  port.on("message", (msg: ToThread) => {
    if (msg.type === "cancel") {
      running.get(msg.id)?.abort();
      return;
    }
    const abort = new AbortController();
    running.set(msg.id, abort);
    const model = models.get(msg.job.version);
    const work = model ? sampleWith(model, msg.job, abort.signal) : Promise.reject(new Error(`model version ${msg.job.version} is not loaded`));
    work.then(
      (outcome) => port.postMessage({ type: "ok", id: msg.id, outcome } satisfies FromThread, [outcome.embeddings.buffer as ArrayBuffer]),
      (err: Error) => port.postMessage({ type: "error", id: msg.id, message: err.message, aborted: abort.signal.aborted } satisfies FromThread),
    ).finally(() => running.delete(msg.id));
  });
  port.postMessage({ type: "ready", models: infos } satisfies FromThread);
}

void main();
