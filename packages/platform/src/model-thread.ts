import { Worker } from "node:worker_threads";

/**
 * Young-generation cap for model threads. Their JavaScript is a message loop around onnxruntime
 * calls whose tensors live outside the heap, so a few MB of nursery is plenty. Left to V8, each
 * thread's nursery grows to 16 MB semi-spaces and shrinks again later: in a bare decode loop that
 * moved RSS by 11 MB, by 5.5 MB with this cap. Per-thread memory that stays put is what a pod's
 * memory limit is sized by.
 */
export const MODEL_THREAD_YOUNG_GENERATION_MB = 12;

/** The first message a model thread sends: loaded (`ready`) or not (`fatal`, with why). */
type StartupMessage = { type: "ready" } | { type: "fatal"; message: string };

/**
 * Starts a worker thread that loads models and resolves with it and its `ready` message; rejects
 * with the thread's own message when it reports `fatal` (a sha256 mismatch, REQUIRE_GPU without a
 * GPU) or with the error if it dies first.
 */
export async function startModelThread<Ready extends { type: "ready" }>(entry: URL, workerData: unknown): Promise<{ worker: Worker; ready: Ready }> {
  const worker = new Worker(entry, { workerData, resourceLimits: { maxYoungGenerationSizeMb: MODEL_THREAD_YOUNG_GENERATION_MB } });
  let onError: (err: Error) => void = () => {};
  let onExit: (code: number) => void = () => {};
  let onMessage: (msg: StartupMessage) => void = () => {};
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      onError = reject;
      onExit = (code) => reject(new Error(`model thread exited with code ${code} before it was ready`));
      onMessage = (msg) => (msg.type === "ready" ? resolve(msg as Ready) : reject(new Error(msg.message)));
      worker.once("error", onError).once("exit", onExit).once("message", onMessage);
    });
    // Only ours: removeAllListeners would also drop the hooks Node uses to keep the port flowing.
    worker.off("error", onError).off("exit", onExit).off("message", onMessage);
    return { worker, ready };
  } catch (err) {
    await worker.terminate();
    throw err;
  }
}
