import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createOnnxSession, createSingleShotDecoder, loadDecoderModelFiles, sha256, type SessionOptions } from "@rebeca/inference";
import type { Logger } from "@rebeca/platform";
import type { LoadedDecoder } from "./processor.js";

/**
 * Loads the decoder each prior version names (`files.decoder` of its manifest), verifying the
 * decoder manifest against the prior manifest's sha256 and every decoder file against its own.
 */
export async function loadDecoders(modelsDir: string, versions: string[], session: SessionOptions, log: Logger): Promise<Map<string, LoadedDecoder>> {
  const loaded = new Map<string, LoadedDecoder>();
  for (const version of versions) {
    const priorManifestPath = join(modelsDir, version, "manifest.json");
    const prior = JSON.parse(await readFile(priorManifestPath, "utf8")) as { files?: { decoder?: { path: string; sha256: string } } };
    const ref = prior.files?.decoder;
    if (!ref) throw new Error(`${priorManifestPath}: files.decoder is missing`);
    const decoderManifestPath = join(dirname(priorManifestPath), ref.path);
    const actual = sha256(new Uint8Array(await readFile(decoderManifestPath)));
    if (actual !== ref.sha256) throw new Error(`${decoderManifestPath}: sha256 ${actual} does not match ${ref.sha256} in ${priorManifestPath}`);
    const files = await loadDecoderModelFiles(decoderManifestPath);
    const m = files.manifest;
    const resolved = await createOnnxSession(files.files["decoder"]!.bytes, session);
    const decoder = createSingleShotDecoder(resolved.session, { embeddingDim: m.embedding_dim, channels: m.channels, height: m.height, width: m.width, io: m.io.decoder });
    loaded.set(version, { decoder, embeddingDim: m.embedding_dim });
    log.info({ version, providers: resolved.providers, rejected: resolved.rejected, decoderSha256: files.files["decoder"]!.sha256, size: [m.channels, m.height, m.width] }, "decoder loaded");
  }
  return loaded;
}
