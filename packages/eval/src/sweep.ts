/**
 * I/O for the sampler frontier (frontier.ts): samples a committed prior with the serving sampler
 * (onnxruntime-node), turns each embedding into what a served batch yields — decoder image, 8-bit
 * quantised as the PNG is, re-encoded by the model's image encoder — and scores it with the demo
 * world's oracle exactly as the served-batch evaluation does (m_u, per-user diversity).
 * Imported as "@rebeca/eval/sweep" so the pure modules stay free of onnxruntime.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createOnnxPrior,
  createOnnxSession,
  createPriorSampler,
  createSingleShotDecoder,
  loadPriorModelFiles,
  toByte,
  type PriorSampler,
  type SamplerName,
  type TimestepSpacing,
} from "@rebeca/inference";
import type { FrontierRun } from "./frontier.js";
import { oracleLikeProbability, type DemoUser } from "./oracle.js";
import { diversity } from "./retrieval.js";
import { loadImageEncoder, type LoadedEncoder } from "./served.js";

/** A sampler configuration to sweep over guidance. */
export interface SweepConfig {
  sampler: SamplerName;
  steps: number;
  spacing: TimestepSpacing;
}

export interface SweepModel {
  version: string;
  sampler: PriorSampler;
  rowOf(userId: string): number | undefined;
  /** Served-output embedding of each prior embedding: decode → 8-bit → encode. */
  reencode(embeddings: Float32Array, count: number): Promise<Float32Array>;
}

/** Loads a model version directory (manifest.json, prior, user table, single-shot decoder + encoder) on one thread. */
export async function loadSweepModel(dir: string): Promise<SweepModel> {
  const files = await loadPriorModelFiles(join(dir, "manifest.json"));
  const one = { providers: ["cpu" as const], intraOpThreads: 1 };
  const { session } = await createOnnxSession(files.prior.bytes, one);
  const m = files.manifest;
  const sampler = createPriorSampler({
    model: createOnnxPrior(session, { embeddingDim: m.embedding_dim, userDim: m.user_dim }),
    userTable: files.userTable,
    manifest: m,
  });
  const decManifest = JSON.parse(await readFile(join(dir, "decoder", "manifest.json"), "utf8")) as {
    files: { decoder: { path: string } };
    io: { decoder: { input: string; output: string } };
  };
  const encoder: LoadedEncoder = await loadImageEncoder(dir);
  const { session: decSession } = await createOnnxSession(join(dir, "decoder", decManifest.files.decoder.path), one);
  const decoder = createSingleShotDecoder(decSession, {
    embeddingDim: m.embedding_dim,
    channels: encoder.channels,
    height: encoder.height,
    width: encoder.width,
    io: decManifest.io.decoder,
  });
  return {
    version: m.version,
    sampler,
    rowOf: (id) => files.userTable.rowOf(id),
    async reencode(embeddings, count) {
      const images = await decoder.decode(embeddings, count);
      const px = Float32Array.from(images.pixels, (v) => toByte(v) / 255);
      return encoder.encode(px, count);
    },
  };
}

export interface SweepOptions {
  users: DemoUser[];
  itemsPerUser: number;
  guidances: number[];
  /** Seeds of set s, user k, item i: seedBase + s·1e6 + k·itemsPerUser + i. */
  seedSets: number;
  seedBase?: number;
  /** Items per sampler call (bounds memory; results do not depend on it). @default 1600 */
  chunk?: number;
  onRun?: (run: FrontierRun, seconds: number) => void;
}

/** Runs every configuration × guidance × seed set; one FrontierRun each, users in `users` order. */
export async function sweep(model: SweepModel, configs: SweepConfig[], o: SweepOptions): Promise<FrontierRun[]> {
  const rows = o.users.map((u) => {
    const r = model.rowOf(u.id);
    if (r === undefined) throw new Error(`${u.id} is not in ${model.version}`);
    return r;
  });
  const per = o.itemsPerUser;
  const n = rows.length * per;
  const userRow = Array.from({ length: n }, (_, i) => rows[Math.floor(i / per)]!);
  const chunk = o.chunk ?? 1600;
  const out: FrontierRun[] = [];
  for (const c of configs) {
    for (const guidance of o.guidances) {
      for (let s = 0; s < o.seedSets; s++) {
        const t0 = Date.now();
        const seeds = Array.from({ length: n }, (_, i) => (o.seedBase ?? 500_000) + s * 1_000_000 + i);
        const parts: Float32Array[] = [];
        for (let a = 0; a < n; a += chunk) {
          const b = Math.min(n, a + chunk);
          const e = await model.sampler.sample({
            userRow: userRow.slice(a, b),
            seeds: seeds.slice(a, b),
            guidance,
            sampler: c.sampler,
            steps: c.steps,
            spacing: c.spacing,
          });
          parts.push(await model.reencode(e, b - a));
        }
        const dim = parts[0]!.length / Math.min(n, chunk);
        const samples = new Float32Array(n * dim);
        let off = 0;
        for (const p of parts) {
          samples.set(p, off);
          off += p.length;
        }
        const own = new Float64Array(rows.length);
        const div = new Float64Array(rows.length);
        for (let k = 0; k < rows.length; k++) {
          const mine = samples.subarray(k * per * dim, (k + 1) * per * dim);
          let sum = 0;
          for (let i = 0; i < per; i++) sum += oracleLikeProbability(o.users[k]!, mine.subarray(i * dim, (i + 1) * dim));
          own[k] = sum / per;
          div[k] = diversity(mine, dim);
        }
        const run: FrontierRun = {
          sampler: c.sampler,
          steps: c.steps,
          spacing: c.spacing,
          guidance,
          seedSet: s,
          own,
          diversity: div,
          samples,
          itemsPerUser: per,
          dim,
        };
        out.push(run);
        o.onRun?.(run, (Date.now() - t0) / 1000);
      }
    }
  }
  return out;
}
