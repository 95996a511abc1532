import type { DecodedImages } from "@rebeca/inference";
import { createModelThreadPool, type Logger } from "@rebeca/platform";
import type { ThreadDecodeRequest, DecoderThreadInit, DecoderThreadReady, ThreadDecodeResult } from "./decoder-thread.js";
import type { EncodedDecode } from "./encoded-images.js";
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
): Promise<{ decoders: Map<string, LoadedDecoder>; close(): Promise<void> }> {
  const pool = await createModelThreadPool<ThreadDecodeRequest, ThreadDecodeResult, DecoderThreadReady>({
    entry: new URL("./decoder-thread.js", import.meta.url),
    workerData: init,
    threads,
    ...(onThreadDeath ? { onThreadDeath } : {}),
  });
  for (const l of pool.ready.logs) log.info(l.info, l.msg);
  const decoders = new Map<string, LoadedDecoder>();
  for (const m of pool.ready.models) {
    const run = (embeddings: Float32Array, count: number, seeds: readonly number[] | undefined, encode: boolean, signal?: AbortSignal) => {
      // Structured clone copies a view's whole ArrayBuffer: send a shard chunk's own values only.
      const own = embeddings.byteLength === embeddings.buffer.byteLength ? embeddings : embeddings.slice();
      const req = { version: m.version, embeddings: own, count, ...(seeds ? { seeds: [...seeds] } : {}), ...(encode ? { encode } : {}) };
      return pool.run(req, signal ? { signal } : {});
    };
    decoders.set(m.version, {
      embeddingDim: m.embeddingDim,
      decoder: { decode: (embeddings, count, seeds, signal): Promise<DecodedImages> => run(embeddings, count, seeds, false, signal) },
      decodeEncoded: (embeddings, count, seeds) => run(embeddings, count, seeds, true) as Promise<EncodedDecode>,
    });
  }
  return {
    decoders,
    async close() {
      log.info(await pool.close(), "decoder threads stopped");
    },
  };
}
