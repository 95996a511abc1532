/*
 * A decoder thread: loads the decoders (sha256-verified) and decodes on request. A latent decoder
 * awaits between its ~50 UNet calls; on the worker's main thread every one of those turns would
 * queue behind PNG encoding, S3 and Redis work of the jobs before it, so decoding runs here.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { workerData } from "node:worker_threads";
import type { DecodedImages, LatentDecoderOverrides, SessionOptions } from "@rebeca/inference";
import { createInTurn, serveModelThread } from "@rebeca/platform";
import { createVersionCache } from "@rebeca/registry";
import { loadDecoders } from "./models.js";

export interface DecoderThreadInit {
  modelsDir: string;
  /** Embedded versions, loaded at start and kept. */
  versions: string[];
  /** Where the worker puts versions fetched from the registry (verified); "" = none. */
  cacheDir?: string;
  /** Most published versions kept loaded besides the embedded ones. @default 4 */
  maxLoaded?: number;
  session: SessionOptions;
  latent: LatentDecoderOverrides;
}

/** One decode: `count` images of model `version` from `embeddings` [count, D]. */
export interface ThreadDecodeRequest {
  version: string;
  embeddings: Float32Array;
  count: number;
  seeds?: number[];
}

/** The decoder thread's start-up message: the versions it loaded, and what it logged loading them. */
export interface DecoderThreadReady {
  type: "ready";
  models: { version: string; embeddingDim: number }[];
  logs: { info: Record<string, unknown>; msg: string }[];
}

const init = workerData as DecoderThreadInit;

serveModelThread<ThreadDecodeRequest, DecodedImages, DecoderThreadReady>(async () => {
  const logs: DecoderThreadReady["logs"] = [];
  const log = { info: (info: Record<string, unknown>, msg: string) => void logs.push({ info, msg }) } as unknown as Parameters<typeof loadDecoders>[3];
  const decoders = await loadDecoders(init.modelsDir, init.versions, init.session, log, init.latent);
  // Published versions load on their first decode, from the cache the main thread filled and
  // verified; loadDecoders checks every file's sha256 again. Least recently used ones leave memory.
  const cache = createVersionCache({
    max: init.maxLoaded ?? 4,
    pinned: new Set(decoders.keys()),
    load: async (version) => {
      const embedded = decoders.get(version);
      if (embedded) return embedded;
      // An embedded version outside MODEL_VERSIONS, or one the main thread fetched into the cache.
      const dir = [init.modelsDir, init.cacheDir].find((d) => d && existsSync(join(d, version, "manifest.json")));
      if (!dir) throw new Error(`model version ${version} is not loaded`);
      return (await loadDecoders(dir, [version], init.session, log, init.latent)).get(version)!;
    },
  });
  // One decode at a time, in arrival order: the worker hands over the next batch while one runs
  // (LANES_PER_THREAD), so it starts the moment the previous one ends, not once the event loop has
  // taken that result; run side by side, two decodes would only interleave their UNet steps.
  const inTurn = createInTurn();
  return {
    ready: { models: [...decoders].map(([version, d]) => ({ version, embeddingDim: d.embeddingDim })), logs },
    work: {
      run: (req, signal) => cache.use(req.version, (loaded) => inTurn(() => loaded.decoder.decode(req.embeddings, req.count, req.seeds, signal))),
      transfer: (img) => [img.pixels.buffer as ArrayBuffer],
    },
  };
});
