/**
 * The latent-diffusion decoder (SD 1.5 + IP-Adapter or Kandinsky-2.2 style) behind the same
 * {@link ImageDecoder} role as the single-shot one. Pure orchestration over three model roles (the
 * ONNX adapters live in onnx.ts): project the embedding, run the scheduler with classifier-free
 * guidance as ONE UNet call of 2B rows per step, decode the latents with the VAE.
 *
 * Seeded and batch-invariant: an item's initial latent depends only on its own seed (a dedicated
 * noise stream), the scheduler is elementwise, and the negative branch is a fixed tensor, so item i
 * of a batch decodes as it would alone (up to the backend's float32 kernels).
 */
import { createLatentScheduler, type LatentSchedulerName } from "./latent-schedulers.js";
import { normalVector } from "./rng.js";
import type { DecodedImages, ImageDecoder } from "./image-roles.js";

/** `image_proj(e[B,E]) → tokens[B,N,X]` (IP-Adapter's image projection). */
export interface ImageProjectionModel {
  project(embeddings: Float32Array, rows: number): Promise<Float32Array>;
}

/** `unet(sample[B,C,h,w], timestep[B], condition[B,…]) → noise[B,C,h,w]`. */
export interface LatentUNetModel {
  predictNoise(sample: Float32Array, timestep: Float32Array, condition: Float32Array, rows: number): Promise<Float32Array>;
}

/** `vae_decoder(latents[B,C,h,w]) → image[B,3,H,W]` in the VAE's range (SD: [−1, 1]). */
export interface LatentVaeModel {
  decode(latents: Float32Array, rows: number): Promise<Float32Array>;
}

export interface LatentDecoderConfig {
  readonly embeddingDim: number;
  /** Latent tensor per item: channels, height, width. */
  readonly latent: { readonly channels: number; readonly height: number; readonly width: number };
  /** VAE scaling factor (SD 1.5: 0.18215); latents are divided by it before the VAE. */
  readonly latentScale: number;
  /** Output image per item. */
  readonly image: { readonly channels: number; readonly height: number; readonly width: number };
  /** Range the VAE produces; mapped linearly onto [0, 1] and clamped. */
  readonly vaeRange: readonly [number, number];
  readonly alphasCumprod: Float64Array;
  readonly stepsOffset: number;
  readonly scheduler: LatentSchedulerName;
  readonly steps: number;
  readonly guidance: number;
  /** rng stream of the initial latent (docs/model-format.md, "Seeded noise"). */
  readonly noiseStream: number;
}

export interface LatentDecoderModels {
  /** Absent for Kandinsky-style UNets that take the embedding itself as the condition. */
  readonly imageProjection?: ImageProjectionModel;
  readonly unet: LatentUNetModel;
  readonly vae: LatentVaeModel;
}

/** An {@link ImageDecoder} that needs a seed per image. */
export interface LatentImageDecoder extends ImageDecoder {
  readonly config: LatentDecoderConfig;
  /** UNet calls per decode (a batched CFG call counts once). */
  readonly unetCallsPerDecode: number;
}

/**
 * Creates the decoder. The negative condition — the all-zero embedding pushed through the image
 * projection, as REBECA does — is computed on first use and reused.
 */
export function createLatentDiffusionDecoder(models: LatentDecoderModels, config: LatentDecoderConfig): LatentImageDecoder {
  const { embeddingDim: E, latent, image } = config;
  const perLatent = latent.channels * latent.height * latent.width;
  const perImage = image.channels * image.height * image.width;
  const callsPerDecode = createLatentScheduler(config.scheduler, config.alphasCumprod, config.steps, { stepsOffset: config.stepsOffset }).timesteps.length;
  let negative: Promise<Float32Array> | undefined;

  const condition = (e: Float32Array, rows: number): Promise<Float32Array> =>
    models.imageProjection ? models.imageProjection.project(e, rows) : Promise.resolve(e);
  const negativeCondition = (): Promise<Float32Array> => {
    negative ??= condition(new Float32Array(E), 1).catch((err: unknown) => {
      negative = undefined; // a failed first call must not poison every later decode
      throw err;
    });
    return negative;
  };

  return {
    config,
    unetCallsPerDecode: callsPerDecode,
    async decode(embeddings, count, seeds, signal): Promise<DecodedImages> {
      if (embeddings.length !== count * E) throw new RangeError(`embeddings has ${embeddings.length} values, expected ${count}×${E}`);
      if (!seeds || seeds.length !== count) throw new RangeError(`the latent decoder needs one seed per image (${count}), got ${seeds?.length ?? "none"}`);
      const B = count;
      const [cond, neg] = await Promise.all([condition(embeddings, B), negativeCondition()]);
      const perCond = neg.length;
      if (cond.length !== B * perCond) throw new Error(`condition has ${cond.length} values, expected ${B}×${perCond}`);
      // Rows 0..B−1 conditional, B..2B−1 the negative: one UNet call per step serves both.
      const ctx = new Float32Array(2 * B * perCond);
      ctx.set(cond);
      for (let b = 0; b < B; b++) ctx.set(neg, (B + b) * perCond);

      const sched = createLatentScheduler(config.scheduler, config.alphasCumprod, config.steps, { stepsOffset: config.stepsOffset });
      const x = new Float64Array(B * perLatent);
      for (let b = 0; b < B; b++) normalVector(seeds[b]!, config.noiseStream, perLatent, x, b * perLatent);
      for (let k = 0; k < x.length; k++) x[k] = x[k]! * sched.initSigma;

      const input = new Float32Array(2 * B * perLatent);
      const timestep = new Float32Array(2 * B);
      const guided = new Float64Array(B * perLatent);
      const g = config.guidance;
      for (let i = 0; i < sched.timesteps.length; i++) {
        signal?.throwIfAborted();
        const s = sched.inputScale(i);
        for (let k = 0; k < x.length; k++) input[k] = x[k]! * s;
        input.copyWithin(B * perLatent, 0, B * perLatent);
        timestep.fill(sched.timesteps[i]!);
        const eps = await models.unet.predictNoise(input, timestep, ctx, 2 * B);
        if (eps.length !== input.length) throw new Error(`unet returned ${eps.length} values, expected ${input.length}`);
        const off = B * perLatent;
        for (let k = 0; k < guided.length; k++) {
          const u = eps[off + k]!;
          guided[k] = u + g * (eps[k]! - u);
        }
        sched.step(guided, i, x);
      }

      signal?.throwIfAborted();
      const lat = new Float32Array(x.length);
      for (let k = 0; k < x.length; k++) lat[k] = x[k]! / config.latentScale;
      const raw = await models.vae.decode(lat, B);
      if (raw.length !== B * perImage) throw new Error(`vae returned ${raw.length} values, expected ${B}×${perImage}`);
      const [lo, hi] = config.vaeRange;
      const pixels = new Float32Array(raw.length);
      for (let k = 0; k < raw.length; k++) pixels[k] = Math.min(1, Math.max(0, (raw[k]! - lo) / (hi - lo)));
      return { pixels, count: B, ...image };
    },
  };
}
