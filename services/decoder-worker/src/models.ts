import { join } from "node:path";
import {
  createOnnxSession,
  createSingleShotDecoder,
  decoderManifestKind,
  loadDecoderModelFiles,
  loadLatentDecoder,
  pairedDecoderManifest,
  type LatentDecoderOverrides,
  type SessionOptions,
} from "@rebeca/inference";
import type { Logger } from "@rebeca/platform";
import type { LoadedDecoder } from "./processor.js";

/** Latent-decoder overrides from config (`LATENT_*`); empty values keep the manifest's defaults. */
export function latentOverrides(config: {
  LATENT_SCHEDULER: "" | "ddim" | "euler" | "pndm";
  LATENT_STEPS: number;
  LATENT_GUIDANCE: string;
}): LatentDecoderOverrides {
  const guidance = config.LATENT_GUIDANCE.trim() === "" ? undefined : Number(config.LATENT_GUIDANCE);
  if (guidance !== undefined && !Number.isFinite(guidance))
    throw new RangeError(`LATENT_GUIDANCE must be a number, got ${JSON.stringify(config.LATENT_GUIDANCE)}`);
  if (config.LATENT_STEPS < 0) throw new RangeError(`LATENT_STEPS must be ≥ 0, got ${config.LATENT_STEPS}`);
  return {
    ...(config.LATENT_SCHEDULER ? { scheduler: config.LATENT_SCHEDULER } : {}),
    ...(config.LATENT_STEPS > 0 ? { steps: config.LATENT_STEPS } : {}),
    ...(guidance !== undefined ? { guidance } : {}),
  };
}

/**
 * Loads the decoder each prior version names (`files.decoder` of its manifest), verifying the
 * decoder manifest against the prior manifest's sha256 and every decoder file against its own.
 * The decoder manifest's `kind` picks the implementation: `single-shot` (the demo) or
 * `latent-diffusion`.
 */
export async function loadDecoders(
  modelsDir: string,
  versions: string[],
  session: SessionOptions,
  log: Logger,
  latent: LatentDecoderOverrides = {},
): Promise<Map<string, LoadedDecoder>> {
  const loaded = new Map<string, LoadedDecoder>();
  for (const version of versions) {
    const decoderManifestPath = await pairedDecoderManifest(join(modelsDir, version, "manifest.json"));
    const kind = await decoderManifestKind(decoderManifestPath);
    if (kind === "latent-diffusion") {
      const l = await loadLatentDecoder(decoderManifestPath, session, latent);
      const c = l.decoder.config;
      loaded.set(version, { decoder: l.decoder, embeddingDim: c.embeddingDim });
      log.info(
        {
          version,
          kind,
          providers: l.providers,
          rejected: l.rejected,
          unetSha256: l.files.files["unet"]!.sha256,
          scheduler: c.scheduler,
          steps: c.steps,
          unetCalls: l.decoder.unetCallsPerDecode,
          guidance: c.guidance,
          size: [c.image.channels, c.image.height, c.image.width],
        },
        "decoder loaded",
      );
      continue;
    }
    const files = await loadDecoderModelFiles(decoderManifestPath);
    const m = files.manifest;
    const resolved = await createOnnxSession(files.files["decoder"]!.bytes, session);
    const decoder = createSingleShotDecoder(resolved.session, {
      embeddingDim: m.embedding_dim,
      channels: m.channels,
      height: m.height,
      width: m.width,
      io: m.io.decoder,
    });
    loaded.set(version, { decoder, embeddingDim: m.embedding_dim });
    log.info(
      {
        version,
        kind,
        providers: resolved.providers,
        rejected: resolved.rejected,
        decoderSha256: files.files["decoder"]!.sha256,
        size: [m.channels, m.height, m.width],
      },
      "decoder loaded",
    );
  }
  return loaded;
}
