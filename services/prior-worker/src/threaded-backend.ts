import { startModelThread } from "@rebeca/platform";
import type { PriorBackend, SampleJob, SampleOutcome } from "./backend.js";
import type { FromThread, ThreadInit, ToThread } from "./sampler-thread.js";

export class SamplingAbortedError extends Error {
  constructor() {
    super("sampling aborted");
    this.name = "SamplingAbortedError";
  }
}

interface Pending {
  resolve: (o: SampleOutcome) => void;
  reject: (e: Error) => void;
  /** Asks the thread to stop this sample between model steps. */
  cancel: () => void;
}

/** How long close() waits for cancelled samples to stop before it terminates the threads anyway. */
const CLOSE_WAIT_MS = 2000;

/**
 * Sampling on `threads` worker threads (one model instance each); requests go to the thread with
 * the fewest in flight. Resolves once every thread has loaded and verified its models; a thread
 * that fails to load (e.g. a sha256 mismatch) rejects with its message.
 */
export async function createThreadedBackend(init: ThreadInit, threads: number, onLoaded: (info: Record<string, unknown>) => void): Promise<PriorBackend> {
  const entry = new URL("./sampler-thread.js", import.meta.url);
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let closing = false;
  const pool = await Promise.all(
    Array.from({ length: threads }, async (_, index) => {
      const { worker, ready } = await startModelThread<Extract<FromThread, { type: "ready" }>>(entry, init);
      if (index === 0) for (const m of ready.models) onLoaded(m.info);
      const slot = { worker, inflight: 0, models: ready.models };
      worker.on("message", (msg: FromThread) => {
        if (msg.type === "ready" || msg.type === "fatal") return;
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        slot.inflight--;
        if (msg.type === "ok") p.resolve(msg.outcome);
        else p.reject(msg.aborted ? new SamplingAbortedError() : new Error(msg.message));
      });
      // A crashed thread fails what it held; the stage retries those jobs.
      worker.on("error", (err) => {
        for (const [id, p] of pending) {
          p.reject(err);
          pending.delete(id);
        }
      });
      return slot;
    }),
  );
  const versions = new Map(pool[0]!.models.map((m) => [m.version, { embeddingDim: m.embeddingDim }]));

  return {
    versions,
    sample(job: SampleJob, signal?: AbortSignal) {
      if (closing) return Promise.reject(new Error("sampler threads are closing"));
      const slot = pool.reduce((a, b) => (b.inflight < a.inflight ? b : a));
      const id = nextId++;
      slot.inflight++;
      return new Promise<SampleOutcome>((resolve, reject) => {
        const cancel = () => slot.worker.postMessage({ type: "cancel", id } satisfies ToThread);
        pending.set(id, { resolve, reject, cancel });
        signal?.addEventListener("abort", cancel, { once: true });
        slot.worker.postMessage({ type: "sample", id, job } satisfies ToThread);
      });
    },
    async close() {
      // Terminating a thread inside an ONNX run aborts the whole process (a native Napi::Error),
      // which happens when a drain handed back jobs whose samples still run: cancel them, let the
      // threads stop between steps, then terminate.
      closing = true;
      for (const p of pending.values()) p.cancel();
      const deadline = Date.now() + CLOSE_WAIT_MS;
      while (pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await Promise.all(pool.map((s) => s.worker.terminate()));
    },
  };
}
