#!/usr/bin/env node
/*
 * Decodes embeddings with a latent-diffusion decoder exactly as the decoder worker does (onnxruntime,
 * one CPU thread, the manifest's scheduler/steps/guidance unless overridden): the Python realism
 * evaluation (training/rebeca_train/decoder_eval.py) measures the images the service would serve.
 *
 *   node packages/eval/dist/decode-cli.js MANIFEST EMBEDDINGS.npy SEEDS.npy OUT.npy [scheduler steps guidance]
 *
 * EMBEDDINGS.npy float32 [N, E]; SEEDS.npy float32 [N] (integers < 2^24); OUT.npy float32 [N, C, H, W] in [0, 1].
 */
import { readFile, writeFile } from "node:fs/promises";
import { loadLatentDecoder, type LatentDecoderOverrides, type LatentSchedulerName } from "@rebeca/inference";
import { encodeNpy, parseNpy } from "./npy.js";

const BATCH = 50;

async function main(): Promise<void> {
  const [manifest, embPath, seedPath, out, scheduler, steps, guidance] = process.argv.slice(2);
  if (!manifest || !embPath || !seedPath || !out) throw new Error("usage: decode-cli MANIFEST EMBEDDINGS.npy SEEDS.npy OUT.npy [scheduler steps guidance]");
  const overrides: LatentDecoderOverrides = {
    ...(scheduler ? { scheduler: scheduler as LatentSchedulerName } : {}),
    ...(steps ? { steps: Number(steps) } : {}),
    ...(guidance ? { guidance: Number(guidance) } : {}),
  };
  const { decoder } = await loadLatentDecoder(manifest, { providers: ["cpu"], intraOpThreads: 1, interOpThreads: 1 }, overrides);
  const emb = parseNpy(new Uint8Array(await readFile(embPath)));
  const seeds = parseNpy(new Uint8Array(await readFile(seedPath)));
  const E = decoder.config.embeddingDim;
  const n = emb.shape[0]!;
  if (emb.shape.length !== 2 || emb.shape[1] !== E || !(emb.data instanceof Float32Array))
    throw new Error(`${embPath}: expected float32 [N, ${E}], got ${emb.shape.join("×")}`);
  if (seeds.shape.length !== 1 || seeds.shape[0] !== n) throw new Error(`${seedPath}: expected [${n}] seeds, got ${seeds.shape.join("×")}`);
  const { channels: C, height: H, width: W } = decoder.config.image;
  const images = new Float32Array(n * C * H * W);
  for (let s = 0; s < n; s += BATCH) {
    const b = Math.min(BATCH, n - s);
    const res = await decoder.decode(emb.data.subarray(s * E, (s + b) * E), b, Array.from(seeds.data.subarray(s, s + b)));
    images.set(res.pixels, s * C * H * W);
  }
  await writeFile(out, encodeNpy([n, C, H, W], images));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
