import type { DecodedImages } from "@rebeca/inference";
import { startModelThread, type Logger } from "@rebeca/platform";
import type { DecoderThreadInit, FromDecoderThread, ToDecoderThread } from "./decoder-thread.js";
import type { LoadedDecoder } from "./processor.js";

/**
 * Decoders running on `threads` worker threads (one model instance each; calls go to the thread
 * with the fewest in flight). Resolves once every thread has loaded and verified its models; a
 * thread that fails to load (a sha256 mismatch, REQUIRE_GPU without a GPU) rejects with its message.
 */
export async function createThreadedDecoders(
  init: DecoderThreadInit,
  threads: number,
  log: Logger,
  /** A thread died after start-up (e.g. the GPU failed): the process should exit and be replaced. */
  onThreadDeath: (err: Error) => void = () => {},
): Promise<{ decoders: Map<string, LoadedDecoder>; close(): Promise<void> }> {
  let closing = false;
  const entry = new URL("./decoder-thread.js", import.meta.url);
  const pending = new Map<number, { resolve: (d: DecodedImages) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const pool = await Promise.all(
    Array.from({ length: threads }, async (_, index) => {
      const { worker, ready } = await startModelThread<Extract<FromDecoderThread, { type: "ready" }>>(entry, init);
      if (index === 0) for (const l of ready.logs) log.info(l.info, l.msg);
      const slot = { worker, inflight: 0, models: ready.models, dead: undefined as Error | undefined };
      worker.on("message", (msg: FromDecoderThread) => {
        if (msg.type !== "ok" && msg.type !== "error") return;
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        slot.inflight--;
        if (msg.type === "ok") p.resolve({ pixels: msg.pixels, count: msg.count, channels: msg.channels, height: msg.height, width: msg.width });
        else p.reject(new Error(msg.message));
      });
      // A dead thread fails what it held (the stage retries those jobs) and every later call to it,
      // instead of leaving them waiting forever; the owner is told so it can replace the process.
      const died = (err: Error) => {
        if (slot.dead || closing) return;
        slot.dead = err;
        for (const [id, p] of pending) {
          p.reject(err);
          pending.delete(id);
        }
        onThreadDeath(err);
      };
      worker.on("error", died);
      worker.on("exit", (code) => died(new Error(`decoder thread exited with code ${code}`)));
      return slot;
    }),
  );
  const decoders = new Map<string, LoadedDecoder>();
  for (const m of pool[0]!.models) {
    decoders.set(m.version, {
      embeddingDim: m.embeddingDim,
      decoder: {
        decode(embeddings, count, seeds) {
          const slot = pool.reduce((a, b) => (b.inflight < a.inflight ? b : a));
          if (slot.dead) return Promise.reject(new Error(`decoder thread is dead: ${slot.dead.message}`));
          const id = nextId++;
          slot.inflight++;
          return new Promise<DecodedImages>((resolve, reject) => {
            pending.set(id, { resolve, reject });
            // Structured clone copies a view's whole ArrayBuffer: send a shard chunk's own values only.
            const own = embeddings.byteLength === embeddings.buffer.byteLength ? embeddings : embeddings.slice();
            slot.worker.postMessage({ type: "decode", id, version: m.version, embeddings: own, count, ...(seeds ? { seeds: [...seeds] } : {}) } satisfies ToDecoderThread);
          });
        },
      },
    });
  }
  return {
    decoders,
    close: async () => {
      closing = true;
      await Promise.all(pool.map((s) => s.worker.terminate()));
    },
  };
}
