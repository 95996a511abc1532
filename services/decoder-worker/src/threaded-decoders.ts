import type { DecodedImages } from "@rebeca/inference";
import { createModelThreadPool, type Logger } from "@rebeca/platform";
import type { ThreadDecodeRequest, DecoderThreadInit, DecoderThreadReady } from "./decoder-thread.js";
import type { LoadedDecoder } from "./processor.js";

/**
 * Decoders running on `threads` decoder threads (one model instance each, see
 * createModelThreadPool). Resolves once every thread has loaded and verified its models; a thread
 * that fails to load (a sha256 mismatch, REQUIRE_GPU without a GPU) rejects with its message.
 */
export async function createThreadedDecoders(
  init: DecoderThreadInit,
  threads: number,
  log: Logger,
  /** A thread died after start-up (e.g. the GPU failed): the process should exit and be replaced. */
  onThreadDeath?: (err: Error) => void,
): Promise<{ decoders: Map<string, LoadedDecoder>; threadDecoder(version: string, embeddingDim: number): LoadedDecoder; close(): Promise<void> }> {
  const pool = await createModelThreadPool<ThreadDecodeRequest, DecodedImages, DecoderThreadReady>({
    entry: new URL("./decoder-thread.js", import.meta.url),
    workerData: init,
    threads,
    ...(onThreadDeath ? { onThreadDeath } : {}),
  });
  for (const l of pool.ready.logs) log.info(l.info, l.msg);
  /** A version's decoder on the threads (a published one is loaded by a thread on its first decode). */
  const threadDecoder = (version: string, embeddingDim: number): LoadedDecoder => ({
    embeddingDim,
    decoder: {
      decode(embeddings, count, seeds, signal) {
        // Structured clone copies a view's whole ArrayBuffer: send a shard chunk's own values only.
        const own = embeddings.byteLength === embeddings.buffer.byteLength ? embeddings : embeddings.slice();
        return pool.run({ version, embeddings: own, count, ...(seeds ? { seeds: [...seeds] } : {}) }, signal ? { signal } : {});
      },
    },
  });
  const decoders = new Map<string, LoadedDecoder>(pool.ready.models.map((m) => [m.version, threadDecoder(m.version, m.embeddingDim)]));
  return {
    decoders,
    threadDecoder,
    async close() {
      log.info(await pool.close(), "decoder threads stopped");
    },
  };
}
