/*
 * A decoder thread: loads the decoders (sha256-verified) and decodes on request. A latent decoder
 * awaits between its ~50 UNet calls; on the worker's main thread every one of those turns would
 * queue behind PNG encoding, S3 and Redis work of the jobs before it, so decoding runs here.
 */
import { workerData } from "node:worker_threads";
import type { DecodedImages, LatentDecoderOverrides, SessionOptions } from "@rebeca/inference";
import { serveModelThread } from "@rebeca/platform";
import { encodeImages, type EncodedDecode } from "./encoded-images.js";
import { loadDecoders } from "./models.js";

export interface DecoderThreadInit {
  modelsDir: string;
  versions: string[];
  session: SessionOptions;
  latent: LatentDecoderOverrides;
}

/** One decode: `count` images of model `version` from `embeddings` [count, D]. */
export interface ThreadDecodeRequest {
  version: string;
  embeddings: Float32Array;
  count: number;
  seeds?: number[];
  /** Also encode each image's PNG and sha256 here (the per-job path uploads them as they come). */
  encode?: boolean;
}

/** A decoder thread's answer: the images, with their PNGs when the request asked for them. */
export type ThreadDecodeResult = DecodedImages | EncodedDecode;

/** The decoder thread's start-up message: the versions it loaded, and what it logged loading them. */
export interface DecoderThreadReady {
  type: "ready";
  models: { version: string; embeddingDim: number }[];
  logs: { info: Record<string, unknown>; msg: string }[];
}

const init = workerData as DecoderThreadInit;

serveModelThread<ThreadDecodeRequest, ThreadDecodeResult, DecoderThreadReady>(async () => {
  const logs: DecoderThreadReady["logs"] = [];
  const log = { info: (info: Record<string, unknown>, msg: string) => void logs.push({ info, msg }) } as unknown as Parameters<typeof loadDecoders>[3];
  const decoders = await loadDecoders(init.modelsDir, init.versions, init.session, log, init.latent);
  return {
    ready: { models: [...decoders].map(([version, d]) => ({ version, embeddingDim: d.embeddingDim })), logs },
    work: {
      async run(req, signal) {
        const loaded = decoders.get(req.version);
        if (!loaded) throw new Error(`model version ${req.version} is not loaded`);
        const images = await loaded.decoder.decode(req.embeddings, req.count, req.seeds, signal);
        return req.encode ? encodeImages(images) : images;
      },
      transfer: (img) => [img.pixels.buffer as ArrayBuffer],
    },
  };
});
