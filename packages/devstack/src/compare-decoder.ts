import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  createOnnxSession,
  createSingleShotDecoder,
  decoderManifestKind,
  encodePng,
  imageAt,
  loadDecoderModelFiles,
  loadLatentDecoder,
  type ImageDecoder,
} from "@rebeca/inference";

/** Renders embeddings to PNGs with one model version's decoder, in this process (one CPU thread). */
export interface ComparisonDecoder {
  /** `embeddings` [count, D] → one PNG per row; `seeds` are used by a latent-diffusion decoder only. */
  render(embeddings: Float32Array, count: number, seeds: readonly number[]): Promise<Uint8Array[]>;
}

/**
 * The decoder `modelsDir/<version>` names (`files.decoder`), loaded sha256-verified as the worker
 * loads it: the demo gallery shows the same generated embeddings through a second decoder.
 */
export async function loadComparisonDecoder(modelsDir: string, version: string): Promise<ComparisonDecoder> {
  const priorManifest = join(modelsDir, version, "manifest.json");
  const ref = (JSON.parse(await readFile(priorManifest, "utf8")) as { files: { decoder: { path: string } } }).files.decoder;
  const path = join(dirname(priorManifest), ref.path);
  const session = { providers: ["cpu"] as const, intraOpThreads: 1 };
  let decoder: ImageDecoder;
  if ((await decoderManifestKind(path)) === "latent-diffusion") {
    decoder = (await loadLatentDecoder(path, { ...session, providers: ["cpu"] })).decoder;
  } else {
    const files = await loadDecoderModelFiles(path);
    const m = files.manifest;
    const { session: s } = await createOnnxSession(files.files["decoder"]!.bytes, { ...session, providers: ["cpu"] });
    decoder = createSingleShotDecoder(s, { embeddingDim: m.embedding_dim, channels: m.channels, height: m.height, width: m.width, io: m.io.decoder });
  }
  return {
    async render(embeddings, count, seeds) {
      const out = await decoder.decode(embeddings, count, seeds);
      return Array.from({ length: count }, (_, i) => encodePng(imageAt(out, i)));
    },
  };
}
