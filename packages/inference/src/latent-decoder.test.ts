// The latent-diffusion decoder on the committed tiny fixture (real ONNX graphs with SD 1.5 +
// IP-Adapter I/O signatures, random weights): parity with the PyTorch reference decode, CFG as one
// batched UNet call per step, seeding and batch invariance, and the GPU refusal.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createLatentDiffusionDecoder, type LatentDecoderModels, type LatentImageDecoder } from "./latent-decoder.js";
import { latentConfigOf, loadLatentDecoder, type LatentDecoderOverrides } from "./latent-load.js";
import type { LatentSchedulerName } from "./latent-schedulers.js";
import { loadLatentDecoderModelFiles, ManifestError } from "./manifest.js";
import { createOnnxLatentModels, createOnnxSession, GpuUnavailableError } from "./onnx.js";

const MANIFEST = fileURLToPath(new URL("../test-fixtures/latent-tiny/manifest.json", import.meta.url));
const CPU = { providers: ["cpu"] as const, intraOpThreads: 1, interOpThreads: 1 };
const parity = JSON.parse(readFileSync(MANIFEST.replace("manifest.json", "parity.json"), "utf8")) as {
  decode: {
    scheduler: LatentSchedulerName;
    steps: number;
    guidance: number;
    seeds: number[];
    embeddings: number[][];
    unet_calls: number;
    images: number[][];
  }[];
};

/** The fixture's ONNX models, with the UNet wrapped to record every call's row count. */
async function open(overrides: LatentDecoderOverrides = {}): Promise<{ decoder: LatentImageDecoder; unetRows: number[] }> {
  const files = await loadLatentDecoderModelFiles(MANIFEST);
  const m = files.manifest;
  const s = async (key: string) => (await createOnnxSession(files.files[key]!.bytes, { ...CPU, providers: ["cpu"] })).session;
  const onnx = createOnnxLatentModels(
    { unet: await s("unet"), imageProj: await s("image_proj"), vaeDecoder: await s("vae_decoder") },
    { unet: m.io.unet, imageProj: m.io.image_proj!, vaeDecoder: m.io.vae_decoder },
    { embeddingDim: m.embedding_dim, latent: m.latent, condition: m.condition! },
  );
  const unetRows: number[] = [];
  const models: LatentDecoderModels = {
    ...onnx,
    unet: { predictNoise: (x, t, c, rows) => (unetRows.push(rows), onnx.unet.predictNoise(x, t, c, rows)) },
  };
  return { decoder: createLatentDiffusionDecoder(models, latentConfigOf(files, overrides)), unetRows };
}

const E = 64;
const embedding = (k: number): Float32Array => Float32Array.from({ length: E }, (_, i) => Math.sin(0.37 * i + k) * 1.5);
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe("latent decoder vs the PyTorch reference decode", () => {
  for (const p of parity.decode) {
    it(`${p.scheduler}, ${p.steps} steps, guidance ${p.guidance}: images within 1e-4`, async () => {
      const { decoder, unetRows } = await open({ scheduler: p.scheduler, steps: p.steps, guidance: p.guidance });
      const out = await decoder.decode(Float32Array.from(p.embeddings.flat()), p.seeds.length, p.seeds);
      expect(maxAbs(out.pixels, p.images.flat())).toBeLessThan(1e-4);
      expect(unetRows.length).toBe(p.unet_calls);
    });
  }
});

describe("latent decoder", () => {
  it("images have the manifest shape, finite values in [0, 1], not saturated", async () => {
    const { decoder } = await open({ steps: 10 });
    const out = await decoder.decode(embedding(0), 1, [5]);
    expect([out.count, out.channels, out.height, out.width]).toEqual([1, 3, 32, 32]);
    expect(out.pixels.length).toBe(3 * 32 * 32);
    expect(out.pixels.every((v) => Number.isFinite(v) && v >= 0 && v <= 1)).toBe(true);
    const inside = out.pixels.filter((v) => v > 0 && v < 1).length;
    expect(inside / out.pixels.length).toBeGreaterThan(0.2);
  });

  for (const [scheduler, steps, calls] of [
    ["ddim", 8, 8],
    ["euler", 8, 8],
    ["pndm", 8, 9],
  ] as const) {
    it(`${scheduler}: ${steps} steps are ${calls} UNet calls of 2B rows (CFG batched into one call)`, async () => {
      const { decoder, unetRows } = await open({ scheduler, steps });
      await decoder.decode(Float32Array.of(...embedding(1), ...embedding(2), ...embedding(3)), 3, [1, 2, 3]);
      expect(unetRows).toEqual(Array(calls).fill(6));
      expect(decoder.unetCallsPerDecode).toBe(calls);
    });
  }

  it("the same seed gives identical bytes; another seed or embedding changes the image", async () => {
    const { decoder } = await open({ steps: 6 });
    const a = await decoder.decode(embedding(0), 1, [42]);
    const again = await (await open({ steps: 6 })).decoder.decode(embedding(0), 1, [42]);
    expect(Buffer.from(again.pixels.buffer).equals(Buffer.from(a.pixels.buffer))).toBe(true);
    const otherSeed = await decoder.decode(embedding(0), 1, [43]);
    const otherEmbedding = await decoder.decode(embedding(9), 1, [42]);
    expect(maxAbs(otherSeed.pixels, a.pixels)).toBeGreaterThan(0.05);
    expect(maxAbs(otherEmbedding.pixels, a.pixels)).toBeGreaterThan(0.05);
  });

  for (const scheduler of ["ddim", "euler", "pndm"] as const) {
    it(`${scheduler}: item i of a batched decode equals its single decode within 1e-5`, async () => {
      const { decoder } = await open({ scheduler, steps: 6 });
      const batch = await decoder.decode(Float32Array.of(...embedding(4), ...embedding(5), ...embedding(6), ...embedding(7)), 4, [10, 11, 12, 13]);
      const per = 3 * 32 * 32;
      for (const i of [0, 2]) {
        const single = await decoder.decode(embedding(4 + i), 1, [10 + i]);
        expect(maxAbs(batch.pixels.subarray(i * per, (i + 1) * per), single.pixels)).toBeLessThan(1e-5);
      }
    });
  }

  it("needs one seed per image", async () => {
    const { decoder } = await open({ steps: 2 });
    await expect(decoder.decode(embedding(0), 1)).rejects.toThrow(/one seed per image/);
    await expect(decoder.decode(embedding(0), 1, [1, 2])).rejects.toThrow(/one seed per image/);
  });
});

describe("loadLatentDecoder", () => {
  it("loads from the manifest on the CPU and reports the provider", async () => {
    const loaded = await loadLatentDecoder(MANIFEST, { providers: ["cuda", "webgpu", "cpu"], intraOpThreads: 1 }, { steps: 2 });
    expect(loaded.providers).toEqual(["cpu"]);
    expect(loaded.rejected.map((r) => r.provider)).toEqual(["cuda", "webgpu"]);
    expect(loaded.decoder.config.steps).toBe(2);
    expect((await loaded.decoder.decode(embedding(0), 1, [1])).pixels.length).toBe(3 * 32 * 32);
  });

  it("REQUIRE_GPU on a CPU-only machine fails fast with a clear message", async () => {
    const started = Date.now();
    const err = await loadLatentDecoder(MANIFEST, { providers: ["cuda", "webgpu", "cpu"], requireGpu: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuUnavailableError);
    expect((err as Error).message).toMatch(/refusing CPU fallback \(cuda: .*; webgpu: .*\)/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("refuses a manifest whose negative policy does not match its files", async () => {
    const files = await loadLatentDecoderModelFiles(MANIFEST);
    const { latentDecoderManifestSchema } = await import("./manifest.js");
    const bad = { ...files.manifest, negative: "zero-embedding" };
    expect(latentDecoderManifestSchema.safeParse(bad).success).toBe(false);
    expect(ManifestError).toBeDefined();
  });
});

describe("latent decoder without an image projection (Kandinsky style)", () => {
  it("feeds the embedding itself as the condition and the all-zero embedding as the negative", async () => {
    const conds: Float32Array[] = [];
    const latentSize = 2 * 2 * 2;
    const decoder = createLatentDiffusionDecoder(
      {
        unet: {
          async predictNoise(sample, _t, condition, rows) {
            conds.push(Float32Array.from(condition));
            expect(sample.length).toBe(rows * latentSize);
            return new Float32Array(sample.length).fill(0.1);
          },
        },
        vae: { decode: async (_latents, rows) => new Float32Array(rows * 3).fill(0) },
      },
      {
        embeddingDim: 2,
        latent: { channels: 2, height: 2, width: 2 },
        latentScale: 1,
        image: { channels: 3, height: 1, width: 1 },
        vaeRange: [-1, 1],
        alphasCumprod: Float64Array.from({ length: 10 }, (_, i) => 1 - 0.05 * (i + 1)),
        stepsOffset: 0,
        scheduler: "ddim",
        steps: 2,
        guidance: 3,
        noiseStream: 5,
      },
    );
    const out = await decoder.decode(Float32Array.of(1, 2, 3, 4), 2, [1, 2]);
    expect(Array.from(out.pixels)).toEqual(Array(6).fill(0.5));
    expect(conds).toHaveLength(2);
    expect(Array.from(conds[0]!)).toEqual([1, 2, 3, 4, 0, 0, 0, 0]);
  });
});

// The trained Fashion-MNIST decoder (models/demo-v2/decoder, training/regenerate-decoder.sh): per-graph
// parity with PyTorch, whole decodes, and batch invariance at the manifest's own scheduler and steps.
describe("the committed trained latent decoder (demo-v2)", () => {
  const TRAINED = fileURLToPath(new URL("../../../models/demo-v2/decoder/manifest.json", import.meta.url));
  const trained = JSON.parse(readFileSync(TRAINED.replace("manifest.json", "parity.json"), "utf8")) as typeof parity & {
    models: { image_embeds: number[][]; image_prompt_embeds: number[][]; sample: number[][]; timestep: number[]; out_sample: number[][] };
  };

  async function openTrained(overrides: LatentDecoderOverrides = {}) {
    const files = await loadLatentDecoderModelFiles(TRAINED);
    const m = files.manifest;
    const s = async (key: string) => (await createOnnxSession(files.files[key]!.bytes, CPU)).session;
    const models = createOnnxLatentModels(
      { unet: await s("unet"), imageProj: await s("image_proj"), vaeDecoder: await s("vae_decoder") },
      { unet: m.io.unet, imageProj: m.io.image_proj!, vaeDecoder: m.io.vae_decoder },
      { embeddingDim: m.embedding_dim, latent: m.latent, condition: m.condition! },
    );
    return { models, manifest: m, decoder: createLatentDiffusionDecoder(models, latentConfigOf(files, overrides)) };
  }

  it("image projection within 1e-5 and one CFG-sized UNet call within 1e-4 of PyTorch", async () => {
    const { models } = await openTrained();
    const p = trained.models;
    const rows = p.image_embeds.length;
    const tokens = await models.imageProjection!.project(Float32Array.from(p.image_embeds.flat()), rows);
    expect(maxAbs(tokens, p.image_prompt_embeds.flat())).toBeLessThan(1e-5);
    const eps = await models.unet.predictNoise(
      Float32Array.from(p.sample.flat()),
      Float32Array.from(p.timestep),
      await projectedWithNegative(models, p.image_embeds),
      2 * rows,
    );
    expect(maxAbs(eps, p.out_sample.flat())).toBeLessThan(1e-4);
  });

  for (const p of trained.decode) {
    it(`${p.scheduler}, ${p.steps} steps, guidance ${p.guidance}: images within 1e-3 of PyTorch`, async () => {
      const { decoder } = await openTrained({ scheduler: p.scheduler, steps: p.steps, guidance: p.guidance });
      const out = await decoder.decode(Float32Array.from(p.embeddings.flat()), p.seeds.length, p.seeds);
      expect(maxAbs(out.pixels, p.images.flat())).toBeLessThan(1e-3);
    });
  }

  it("an image decoded in a batch of 8 equals its decode alone within 1e-5 (the manifest's scheduler and steps)", async () => {
    const { decoder, manifest } = await openTrained();
    expect([manifest.channels, manifest.height, manifest.width]).toEqual([1, 28, 28]);
    const seeds = [21, 22, 23, 24, 25, 26, 27, 28];
    const batch = await decoder.decode(Float32Array.from(seeds.flatMap((_, i) => [...embedding(i)])), 8, seeds);
    const per = 28 * 28;
    for (const i of [0, 3, 7]) {
      const single = await decoder.decode(embedding(i), 1, [seeds[i]!]);
      expect(maxAbs(batch.pixels.subarray(i * per, (i + 1) * per), single.pixels)).toBeLessThan(1e-5);
    }
  });
});

/** The UNet's condition for a CFG call: the projected embeddings, then the projected zero embedding per row. */
async function projectedWithNegative(
  models: { imageProjection?: { project(e: Float32Array, rows: number): Promise<Float32Array> } },
  embeds: number[][],
): Promise<Float32Array> {
  const rows = embeds.length;
  const cond = await models.imageProjection!.project(Float32Array.from(embeds.flat()), rows);
  const neg = await models.imageProjection!.project(new Float32Array(embeds[0]!.length), 1);
  const ctx = new Float32Array(2 * cond.length);
  ctx.set(cond);
  for (let r = 0; r < rows; r++) ctx.set(neg, cond.length + r * neg.length);
  return ctx;
}
