/**
 * Loads a latent-diffusion decoder directory (manifest + three graphs, sha256-verified) into a
 * ready {@link LatentImageDecoder}. The I/O half of latent-decoder.ts.
 */
import { createLatentDiffusionDecoder, type LatentDecoderConfig, type LatentImageDecoder } from "./latent-decoder.js";
import type { LatentSchedulerName } from "./latent-schedulers.js";
import { loadLatentDecoderModelFiles, type LatentDecoderModelFiles } from "./manifest.js";
import { createOnnxLatentModels, createOnnxSession, type ExecutionProvider, type SessionOptions } from "./onnx.js";

/** Run-time choices that may differ from the manifest's defaults (e.g. fewer steps for a preview pool). */
export interface LatentDecoderOverrides {
  readonly scheduler?: LatentSchedulerName;
  readonly steps?: number;
  readonly guidance?: number;
}

export interface LoadedLatentDecoder {
  readonly decoder: LatentImageDecoder;
  readonly files: LatentDecoderModelFiles;
  /** Providers the UNet session resolved to (the other graphs follow the same policy). */
  readonly providers: readonly ExecutionProvider[];
  readonly rejected: readonly { provider: ExecutionProvider; reason: string }[];
}

/** The decoder configuration a manifest describes, with overrides applied. */
export function latentConfigOf(files: LatentDecoderModelFiles, overrides: LatentDecoderOverrides = {}): LatentDecoderConfig {
  const m = files.manifest;
  return {
    embeddingDim: m.embedding_dim,
    latent: { channels: m.latent.channels, height: m.latent.height, width: m.latent.width },
    latentScale: m.latent.scale,
    image: { channels: m.channels, height: m.height, width: m.width },
    vaeRange: m.vae_range,
    alphasCumprod: Float64Array.from(m.scheduler.alphas_cumprod),
    stepsOffset: m.scheduler.steps_offset,
    scheduler: overrides.scheduler ?? m.defaults.scheduler,
    steps: overrides.steps ?? m.defaults.steps,
    guidance: overrides.guidance ?? m.defaults.guidance,
    noiseStream: m.noise_stream,
  };
}

/** Verifies and loads a latent decoder; `REQUIRE_GPU` semantics come from `session.requireGpu`. */
export async function loadLatentDecoder(manifestPath: string, session: SessionOptions, overrides: LatentDecoderOverrides = {}): Promise<LoadedLatentDecoder> {
  const files = await loadLatentDecoderModelFiles(manifestPath);
  const m = files.manifest;
  // The UNet first: with requireGpu it is the one that must not land on the CPU, and failing here
  // costs nothing else.
  const unet = await createOnnxSession(files.files["unet"]!.bytes, session);
  const vae = await createOnnxSession(files.files["vae_decoder"]!.bytes, session);
  const proj = files.files["image_proj"] ? await createOnnxSession(files.files["image_proj"].bytes, session) : undefined;
  const models = createOnnxLatentModels(
    { unet: unet.session, vaeDecoder: vae.session, ...(proj ? { imageProj: proj.session } : {}) },
    {
      unet: m.io.unet,
      vaeDecoder: m.io.vae_decoder,
      ...(m.io.image_proj ? { imageProj: m.io.image_proj } : {}),
    },
    { embeddingDim: m.embedding_dim, latent: m.latent, ...(m.condition ? { condition: m.condition } : {}) },
  );
  const decoder = createLatentDiffusionDecoder(models, latentConfigOf(files, overrides));
  return { decoder, files, providers: unet.providers, rejected: unet.rejected };
}
