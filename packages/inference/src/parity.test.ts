// Parity with the PyTorch reference (docs/model-format.md, "Parity file" and "Decoder parity file"):
// EVERY model version under models/, loaded through the production loaders, must reproduce the
// trainer's prior outputs, noise and sampled embeddings, and its decoder's and encoder's outputs.
// Never skips: a missing version, manifest entry or file fails with a message saying what to produce.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { modelVersionDirs } from "../test-support/demo-model.js";
import { latentConfigOf } from "./latent-load.js";
import { createLatentDiffusionDecoder, type LatentImageDecoder } from "./latent-decoder.js";
import type { LatentSchedulerName } from "./latent-schedulers.js";
import { decoderManifestKind, loadDecoderModelFiles, loadLatentDecoderModelFiles, loadPriorModelFiles, type PriorModelFiles } from "./manifest.js";
import { createImageEncoder, createOnnxLatentModels, createOnnxPrior, createOnnxSession, createSingleShotDecoder, type ImageEncoder } from "./onnx.js";
import { createPriorSampler } from "./prior-service.js";
import { normalVector } from "./rng.js";
import { cosineAlphasCumprod } from "./schedule.js";
import { SAMPLER_NAMES, type PriorModel, type SamplerName } from "./sampler.js";
import type { TimestepSpacing } from "./schedule.js";

interface ParityFile {
  model: { x_t: number[][]; t: number[]; user_rows: number[]; like: number[]; x0: number[][] };
  samplers: {
    sampler: SamplerName;
    steps: number;
    /** Absent in parity files older than the spacing option (then "linspace"). */
    spacing?: TimestepSpacing;
    guidance: number;
    user_rows: (number | null)[];
    seeds: number[];
    noise_check: number[][];
    embedding: number[][];
  }[];
}

interface DecoderParityFile {
  decoder: { embedding: number[][]; image: number[][] };
  encoder: { image: number[][]; embedding: number[][] };
}

/** A latent-diffusion decoder's parity file: reference decodes (and the paired encoder's vectors). */
interface LatentParityFile {
  decode: { scheduler: LatentSchedulerName; steps: number; guidance: number; seeds: number[]; embeddings: number[][]; images: number[][] }[];
  encoder: { image: number[][]; embedding: number[][] };
}

/** Latent decodes run many float32 UNet calls: images agree with PyTorch within 1e-3 (docs/latent-export.md). */
const LATENT_TOLERANCE = 1e-3;

const TOLERANCE = 1e-5;

function parseJson<T>(bytes: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}

function loaders(dir: string) {
  let prior: Promise<{ files: PriorModelFiles; parity: ParityFile; model: PriorModel }> | undefined;
  const loadPrior = () =>
    (prior ??= (async () => {
      const files = await loadPriorModelFiles(join(dir, "manifest.json"));
      const parityFile = files.files["parity"];
      if (!parityFile) throw new Error(`${files.manifestPath} lists no parity file; the contract requires one`);
      const parity = parseJson<ParityFile>(parityFile.bytes);
      const { session } = await createOnnxSession(files.prior.bytes, { providers: ["cpu"], intraOpThreads: 1 });
      const model = createOnnxPrior(session, { embeddingDim: files.manifest.embedding_dim, userDim: files.manifest.user_dim });
      return { files, parity, model };
    })());
  const loadDecoderFor = async () => {
    const { files } = await loadPrior();
    const ref = files.files["decoder"];
    if (!ref) throw new Error(`${files.manifestPath} lists no decoder manifest; the contract requires one`);
    return ref.path;
  };
  const encoderOf = async (
    bytes: Uint8Array,
    m: { embedding_dim: number; channels: number; height: number; width: number },
    io: { input: string; output: string },
  ): Promise<ImageEncoder> =>
    createImageEncoder((await createOnnxSession(bytes, { providers: ["cpu"], intraOpThreads: 1 })).session, {
      embeddingDim: m.embedding_dim,
      channels: m.channels,
      height: m.height,
      width: m.width,
      io,
    });
  /** Kind of this version's decoder, and for a latent one its verified files, models, parity and encoder. */
  const loadLatent = async () => {
    const path = await loadDecoderFor();
    if ((await decoderManifestKind(path)) !== "latent-diffusion") return undefined;
    const dec = await loadLatentDecoderModelFiles(path);
    const m = dec.manifest;
    for (const key of ["unet", "image_proj", "vae_decoder", "parity", "encoder"] as const) {
      if (!dec.files[key]) throw new Error(`${dec.manifestPath} lists no ${key} file; a served latent version needs one (pair-version adds the encoder)`);
    }
    if (!m.io.encoder || !m.io.image_proj || !m.condition) throw new Error(`${dec.manifestPath} lacks io.encoder, io.image_proj or condition`);
    const s = async (key: string) => (await createOnnxSession(dec.files[key]!.bytes, { providers: ["cpu"], intraOpThreads: 1 })).session;
    const models = createOnnxLatentModels(
      { unet: await s("unet"), imageProj: await s("image_proj"), vaeDecoder: await s("vae_decoder") },
      { unet: m.io.unet, imageProj: m.io.image_proj, vaeDecoder: m.io.vae_decoder },
      { embeddingDim: m.embedding_dim, latent: m.latent, condition: m.condition },
    );
    const decoderWith = (o: { scheduler: LatentSchedulerName; steps: number; guidance: number }): LatentImageDecoder =>
      createLatentDiffusionDecoder(models, latentConfigOf(dec, o));
    return {
      manifest: m,
      parity: parseJson<LatentParityFile>(dec.files["parity"]!.bytes),
      decoderWith,
      encoder: await encoderOf(dec.files["encoder"]!.bytes, m, m.io.encoder),
    };
  };
  const loadDecoder = async () => {
    const dec = await loadDecoderModelFiles(await loadDecoderFor());
    const m = dec.manifest;
    for (const key of ["decoder", "encoder", "parity"] as const) {
      if (!dec.files[key]) throw new Error(`${dec.manifestPath} lists no ${key} file; the contract requires one`);
    }
    if (!m.io.encoder) throw new Error(`${dec.manifestPath} has no io.encoder`);
    const shape = { embeddingDim: m.embedding_dim, channels: m.channels, height: m.height, width: m.width };
    const opts = { providers: ["cpu" as const], intraOpThreads: 1 };
    const decoder = createSingleShotDecoder((await createOnnxSession(dec.files["decoder"]!.bytes, opts)).session, {
      ...shape,
      io: m.io.decoder,
    });
    const encoder = await encoderOf(dec.files["encoder"]!.bytes, m, m.io.encoder);
    return { manifest: m, parity: parseJson<DecoderParityFile>(dec.files["parity"]!.bytes), decoder, encoder };
  };
  return { loadPrior, loadDecoder, loadLatent };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const versions = modelVersionDirs();

it("models/ holds the committed demo versions", () => {
  expect(versions.map((v) => v.version)).toEqual(expect.arrayContaining(["demo-v1", "demo-v1-control"]));
});

for (const { version, dir } of versions)
  describe(`${version} parity with the PyTorch reference`, () => {
    const { loadPrior, loadDecoder, loadLatent } = loaders(dir);

    it("manifest names this version and its schedule is the cosine schedule", async () => {
      const { files } = await loadPrior();
      expect(files.manifest.version).toBe(version);
      const T = files.manifest.schedule.timesteps;
      expect(maxAbsDiff(files.alphasCumprod, cosineAlphasCumprod(T))).toBeLessThan(1e-9);
    });

    it("(a) a direct model call reproduces torch within 1e-5", async () => {
      const { files, parity, model } = await loadPrior();
      const { x_t, t, user_rows, like, x0 } = parity.model;
      const B = t.length;
      const U = files.manifest.user_dim;
      const user = new Float32Array(B * U);
      user_rows.forEach((r, b) => user.set(files.userTable.row(r), b * U));
      const out = await model.predictX0({
        xT: Float32Array.from(x_t.flat()),
        t: BigInt64Array.from(t.map(BigInt)),
        user,
        like: BigInt64Array.from(like.map(BigInt)),
        rows: B,
      });
      const diff = maxAbsDiff(out, x0.flat());
      console.info(`[parity] ${version} prior x0 max |Δ| = ${diff}`);
      expect(diff).toBeLessThanOrEqual(TOLERANCE);
    });

    it("(b) seeded noise reproduces noise_check", async () => {
      const { parity } = await loadPrior();
      expect(parity.samplers.length).toBeGreaterThan(0);
      for (const s of parity.samplers) {
        s.seeds.forEach((seed, i) => {
          const expected = s.noise_check[i]!;
          expect(maxAbsDiff(normalVector(seed, 0, expected.length), expected)).toBeLessThanOrEqual(1e-12);
        });
      }
    });

    it("(c) every sampler and spacing reproduces torch embeddings within 1e-5", async () => {
      const { files, parity, model } = await loadPrior();
      const sampler = createPriorSampler({ model, userTable: files.userTable, manifest: files.manifest });
      const seen = new Set<string>();
      for (const s of parity.samplers) {
        const out = await sampler.sample({
          userRow: s.user_rows,
          seeds: s.seeds,
          guidance: s.guidance,
          steps: s.steps,
          sampler: s.sampler,
          spacing: s.spacing ?? "linspace",
        });
        const diff = maxAbsDiff(out, s.embedding.flat());
        const name = `${s.sampler}-${s.steps} ${s.spacing ?? "linspace"}`;
        console.info(`[parity] ${version} ${name} max |Δ| = ${diff}`);
        expect(diff, `${name}: max |Δ| = ${diff}`).toBeLessThanOrEqual(TOLERANCE);
        seen.add(s.sampler);
        seen.add(s.spacing ?? "linspace");
      }
      expect([...seen].sort()).toEqual([...SAMPLER_NAMES, "leading", "linspace", "trailing"].sort());
    }, 120_000);

    it("the real prior keeps sampling batch invariant: item 0 alone equals item 0 in a batch of 3", async () => {
      const { files, model } = await loadPrior();
      const sampler = createPriorSampler({ model, userTable: files.userTable, manifest: files.manifest });
      for (const name of SAMPLER_NAMES) {
        const alone = await sampler.sample({ userRow: 0, seeds: [42], sampler: name, spacing: "trailing" });
        const batch = await sampler.sample({ userRow: [0, 1, null], seeds: [42, 7, 9], sampler: name, spacing: "trailing" });
        expect(maxAbsDiff(alone, batch.subarray(0, alone.length)), name).toBeLessThanOrEqual(1e-6);
      }
    }, 120_000);

    it("(d) the decoder reproduces torch images (single-shot within 1e-5; latent-diffusion decodes within 1e-3)", async () => {
      const latent = await loadLatent();
      if (latent) {
        expect(latent.parity.decode.length).toBeGreaterThan(0);
        for (const p of latent.parity.decode) {
          const out = await latent.decoderWith(p).decode(Float32Array.from(p.embeddings.flat()), p.seeds.length, p.seeds);
          const diff = maxAbsDiff(out.pixels, p.images.flat());
          console.info(`[parity] ${version} latent ${p.scheduler}-${p.steps} image max |Δ| = ${diff}`);
          expect(diff, `${p.scheduler} ${p.steps}: max |Δ| = ${diff}`).toBeLessThanOrEqual(LATENT_TOLERANCE);
        }
        return;
      }
      const { manifest: m, parity, decoder } = await loadDecoder();
      const { embedding, image } = parity.decoder;
      expect(embedding.length).toBeGreaterThan(0);
      expect(image.length).toBe(embedding.length);
      embedding.forEach((row) => expect(row.length).toBe(m.embedding_dim));
      const out = await decoder.decode(Float32Array.from(embedding.flat()), embedding.length);
      expect(out.pixels.length).toBe(embedding.length * m.channels * m.height * m.width);
      const diff = maxAbsDiff(out.pixels, image.flat());
      console.info(`[parity] ${version} decoder image max |Δ| = ${diff}`);
      expect(diff, `decoder: max |Δ| = ${diff}`).toBeLessThanOrEqual(TOLERANCE);
    }, 60_000);

    it("(e) encoder.onnx reproduces torch embeddings within 1e-5", async () => {
      const { manifest: m, parity, encoder } = (await loadLatent()) ?? (await loadDecoder());
      const { image, embedding } = parity.encoder;
      expect(image.length).toBeGreaterThan(0);
      expect(embedding.length).toBe(image.length);
      image.forEach((row) => expect(row.length).toBe(m.channels * m.height * m.width));
      const out = await encoder.encode(Float32Array.from(image.flat()), image.length);
      const diff = maxAbsDiff(out, embedding.flat());
      console.info(`[parity] ${version} encoder embedding max |Δ| = ${diff}`);
      expect(diff, `encoder: max |Δ| = ${diff}`).toBeLessThanOrEqual(TOLERANCE);
    });
  });
