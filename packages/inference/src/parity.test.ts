// Parity with the PyTorch reference (docs/model-format.md, "Parity file"): the committed demo prior,
// loaded through the production loader, must reproduce the trainer's model outputs, noise and
// sampled embeddings. Never skips: missing artifacts fail with a message saying what to produce.
import { describe, expect, it } from 'vitest';
import { demoFile } from '../test-support/demo-model.js';
import { loadPriorModelFiles, type PriorModelFiles } from './manifest.js';
import { createOnnxPrior, createOnnxSession } from './onnx.js';
import { createPriorSampler } from './prior-service.js';
import { normalVector } from './rng.js';
import { cosineAlphasCumprod } from './schedule.js';
import type { PriorModel, SamplerName } from './sampler.js';

interface ParityFile {
  model: { x_t: number[][]; t: number[]; user_rows: number[]; like: number[]; x0: number[][] };
  samplers: {
    sampler: SamplerName;
    steps: number;
    guidance: number;
    user_rows: (number | null)[];
    seeds: number[];
    noise_check: number[][];
    embedding: number[][];
  }[];
}

let loaded: Promise<{ files: PriorModelFiles; parity: ParityFile; model: PriorModel }> | undefined;
function load() {
  loaded ??= (async () => {
    const files = await loadPriorModelFiles(demoFile('manifest.json'));
    const parityFile = files.files['parity'];
    if (!parityFile) throw new Error(`${files.manifestPath} lists no parity file; the contract requires one`);
    const parity = JSON.parse(new TextDecoder().decode(parityFile.bytes)) as ParityFile;
    const { session } = await createOnnxSession(files.prior.bytes, { providers: ['cpu'], intraOpThreads: 1 });
    const model = createOnnxPrior(session, { embeddingDim: files.manifest.embedding_dim, userDim: files.manifest.user_dim });
    return { files, parity, model };
  })();
  return loaded;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('demo-v1 parity with the PyTorch reference', () => {
  it('manifest schedule is the cosine schedule', async () => {
    const { files } = await load();
    const T = files.manifest.schedule.timesteps;
    expect(maxAbsDiff(files.alphasCumprod, cosineAlphasCumprod(T))).toBeLessThan(1e-9);
  });

  it('(a) a direct model call reproduces torch within 1e-5', async () => {
    const { files, parity, model } = await load();
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
    expect(maxAbsDiff(out, x0.flat())).toBeLessThanOrEqual(1e-5);
  });

  it('(b) seeded noise reproduces noise_check', async () => {
    const { parity } = await load();
    expect(parity.samplers.length).toBeGreaterThan(0);
    for (const s of parity.samplers) {
      s.seeds.forEach((seed, i) => {
        const expected = s.noise_check[i]!;
        expect(maxAbsDiff(normalVector(seed, 0, expected.length), expected)).toBeLessThanOrEqual(1e-12);
      });
    }
  });

  it('(c) DDIM and DDPM samplers reproduce torch embeddings within 1e-4', async () => {
    const { files, parity, model } = await load();
    const sampler = createPriorSampler({ model, userTable: files.userTable, manifest: files.manifest });
    const seen = new Set<string>();
    for (const s of parity.samplers) {
      const out = await sampler.sample({
        userRow: s.user_rows,
        seeds: s.seeds,
        guidance: s.guidance,
        steps: s.steps,
        sampler: s.sampler,
      });
      const diff = maxAbsDiff(out, s.embedding.flat());
      expect(diff, `${s.sampler} ${s.steps} steps: max |Δ| = ${diff}`).toBeLessThanOrEqual(1e-4);
      seen.add(`${s.sampler}:${s.steps}`);
    }
    expect(seen.has('ddim:50') && seen.has('ddpm:1000')).toBe(true);
  }, 120_000);

  it('the real prior keeps sampling batch invariant: item 0 alone equals item 0 in a batch of 3', async () => {
    const { files, model } = await load();
    const sampler = createPriorSampler({ model, userTable: files.userTable, manifest: files.manifest });
    for (const name of ['ddim', 'ddpm'] as const) {
      const alone = await sampler.sample({ userRow: 0, seeds: [42], sampler: name });
      const batch = await sampler.sample({ userRow: [0, 1, null], seeds: [42, 7, 9], sampler: name });
      expect(maxAbsDiff(alone, batch.subarray(0, alone.length)), name).toBeLessThanOrEqual(1e-6);
    }
  }, 120_000);
});
