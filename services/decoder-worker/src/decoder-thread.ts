/*
 * A decoder thread: loads the decoders (sha256-verified) and decodes on request. A latent decoder
 * awaits between its ~50 UNet calls; on the worker's main thread every one of those turns would
 * queue behind PNG encoding, S3 and Redis work of the jobs before it, so decoding runs here.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { LatentDecoderOverrides, SessionOptions } from "@rebeca/inference";
import { loadDecoders } from "./models.js";

export interface DecoderThreadInit {
  modelsDir: string;
  versions: string[];
  session: SessionOptions;
  latent: LatentDecoderOverrides;
}

export type ToDecoderThread = { type: "decode"; id: number; version: string; embeddings: Float32Array; count: number; seeds?: readonly number[] };
export type FromDecoderThread =
  | { type: "ready"; models: { version: string; embeddingDim: number }[]; logs: { info: Record<string, unknown>; msg: string }[] }
  | { type: "fatal"; message: string }
  | { type: "ok"; id: number; pixels: Float32Array; count: number; channels: number; height: number; width: number }
  | { type: "error"; id: number; message: string };

const port = parentPort!;
const init = workerData as DecoderThreadInit;

async function main() {
  const logs: { info: Record<string, unknown>; msg: string }[] = [];
  const log = { info: (info: Record<string, unknown>, msg: string) => void logs.push({ info, msg }) } as unknown as Parameters<typeof loadDecoders>[3];
  let decoders: Awaited<ReturnType<typeof loadDecoders>>;
  try {
    decoders = await loadDecoders(init.modelsDir, init.versions, init.session, log, init.latent);
  } catch (err) {
    port.postMessage({ type: "fatal", message: (err as Error).message } satisfies FromDecoderThread);
    return;
  }
  port.on("message", (msg: ToDecoderThread) => {
    const loaded = decoders.get(msg.version);
    const work = loaded ? loaded.decoder.decode(msg.embeddings, msg.count, msg.seeds) : Promise.reject(new Error(`model version ${msg.version} is not loaded`));
    work.then(
      (img) => port.postMessage({ type: "ok", id: msg.id, ...img } satisfies FromDecoderThread, [img.pixels.buffer as ArrayBuffer]),
      (err: Error) => port.postMessage({ type: "error", id: msg.id, message: err.message } satisfies FromDecoderThread),
    );
  });
  port.postMessage({ type: "ready", models: [...decoders].map(([version, d]) => ({ version, embeddingDim: d.embeddingDim })), logs } satisfies FromDecoderThread);
}

void main();
