/**
 * I/O around the pure evaluation: the demo world from disk, generated PNGs from the result
 * manifest in S3, the ONNX image encoder that re-encodes them, and the verifiers. Kept apart from
 * the pure modules (imported as "@rebeca/eval/served") so those stay free of onnxruntime and S3.
 */
import { readFile, access } from "node:fs/promises";
import { join } from "node:path";
import { PNG } from "pngjs";
import * as ort from "onnxruntime-node";
import { createImageEncoder, createOnnxSession, encodePng, type ImageEncoder } from "@rebeca/inference";
import { anyDecoderManifestSchema, parseManifest, verifyManifestFiles } from "@rebeca/inference/manifest";
import type { UserResult } from "@rebeca/contracts";
import { parseNpy } from "./npy.js";
import { oracleLikeProbability, type DemoUser } from "./oracle.js";
import { evaluateRun, type RunReport } from "./report.js";

export interface DemoWorld {
  users: Map<string, DemoUser>;
  itemIds: string[];
  /** Catalogue embeddings [items, dim] (the encoder's space). */
  catalogue: Float32Array;
  dim: number;
  /** Catalogue images [items, 28·28] as bytes. */
  pixels: Uint8Array;
  /** Each user's rated pool (catalogue indices) from every ratings file of the world. */
  pools: Map<string, { liked: number[]; disliked: number[] }>;
  /** The learned verifier's user ids (row order), when the world ships verifier.onnx. */
  verifierUsers?: string[];
  dir: string;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Loads models/<version>/world: oracle users (users.json), catalogue and rated pools, and the
 * learned verifier's users. Only what is present is loaded: a world for real users may ship just
 * the learned verifier (then retrieval@k has no pools and reports 0).
 */
export async function loadDemoWorld(dir: string): Promise<DemoWorld> {
  if (!(await exists(dir))) throw new Error(`world directory ${dir} does not exist`);
  const users = (await exists(join(dir, "users.json"))) ? (JSON.parse(await readFile(join(dir, "users.json"), "utf8")) as { users: DemoUser[] }).users : [];
  const hasCatalogue = await exists(join(dir, "items.npy"));
  const itemIds = hasCatalogue ? (await readFile(join(dir, "item_ids.txt"), "utf8")).split("\n").filter(Boolean) : [];
  const index = new Map(itemIds.map((id, i) => [id, i]));
  const items = hasCatalogue ? parseNpy(new Uint8Array(await readFile(join(dir, "items.npy")))) : { shape: [0, 0], data: new Float32Array(0) };
  const pixels = (await exists(join(dir, "item_pixels.npy")))
    ? parseNpy(new Uint8Array(await readFile(join(dir, "item_pixels.npy"))))
    : { shape: [0], data: new Uint8Array(0) };
  const pools = new Map<string, { liked: number[]; disliked: number[] }>();
  // The verifier's ratings are held out from the pools: they train the learned verifier.
  for (const file of ["ratings.csv", "ratings_new_users.csv"]) {
    if (!(await exists(join(dir, file)))) continue;
    for (const line of (await readFile(join(dir, file), "utf8")).split("\n").slice(1)) {
      const [user, item, like] = line.trim().split(",");
      const i = item === undefined ? undefined : index.get(item);
      if (!user || i === undefined) continue;
      const pool = pools.get(user) ?? { liked: [], disliked: [] };
      (like === "1" ? pool.liked : pool.disliked).push(i);
      pools.set(user, pool);
    }
  }
  const verifierUsers = (await exists(join(dir, "verifier_users.txt")))
    ? (await readFile(join(dir, "verifier_users.txt"), "utf8")).split("\n").filter(Boolean)
    : undefined;
  return {
    users: new Map(users.map((u) => [u.id, u])),
    itemIds,
    catalogue: items.data as Float32Array,
    dim: items.shape[1]!,
    pixels: pixels.data as Uint8Array,
    pools,
    ...(verifierUsers ? { verifierUsers } : {}),
    dir,
  };
}

/** Decodes an 8-bit PNG to planar floats in [0, 1] ([C, H, W]; grey stays one channel). */
export function decodePng(bytes: Uint8Array, channels = 1): { pixels: Float32Array; height: number; width: number } {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const { width, height, data } = png;
  const pixels = new Float32Array(channels * height * width);
  for (let c = 0; c < channels; c++) for (let p = 0; p < height * width; p++) pixels[c * height * width + p] = data[p * 4 + c]! / 255;
  return { pixels, height, width };
}

export interface LoadedEncoder extends ImageEncoder {
  dim: number;
  channels: number;
  height: number;
  width: number;
}

/**
 * The model's image encoder (decoder/manifest.json → encoder.onnx), on one CPU thread. The
 * manifest is validated and the encoder's bytes checked against its sha256 before they are loaded.
 */
export async function loadImageEncoder(modelDir: string): Promise<LoadedEncoder> {
  const parsed = await parseManifest(anyDecoderManifestSchema, join(modelDir, "decoder", "manifest.json"));
  const { manifest } = parsed;
  if (!manifest.files.encoder || !manifest.io.encoder) throw new Error(`${modelDir}: the decoder ships no image encoder`);
  const { files } = await verifyManifestFiles(parsed, ["encoder"]);
  const { session } = await createOnnxSession(files["encoder"]!.bytes, { providers: ["cpu"], intraOpThreads: 1 });
  const shape = { embeddingDim: manifest.embedding_dim, channels: manifest.channels, height: manifest.height, width: manifest.width, io: manifest.io.encoder };
  return { ...createImageEncoder(session, shape), dim: shape.embeddingDim, channels: shape.channels, height: shape.height, width: shape.width };
}

/** Scores items for users: P(like | user, item). */
export interface Verifier {
  name: "oracle" | "learned";
  /** Whether it can score this user. */
  knows(userId: string): boolean;
  /** matrix[u * items + i] = P(like | users[u], item i) from embeddings [items, dim] and pixels [items, C·H·W]. */
  scoreMatrix(users: string[], embeddings: Float32Array, pixels: Float32Array, items: number): Promise<Float64Array>;
}

/** The demo world's exact oracle (scores re-encoded embeddings). */
export function oracleVerifier(world: DemoWorld): Verifier {
  return {
    name: "oracle",
    knows: (id) => world.users.has(id),
    async scoreMatrix(users, embeddings, _pixels, items) {
      const m = new Float64Array(users.length * items);
      const d = world.dim;
      users.forEach((id, u) => {
        const user = world.users.get(id)!;
        for (let i = 0; i < items; i++) m[u * items + i] = oracleLikeProbability(user, embeddings.subarray(i * d, (i + 1) * d));
      });
      return m;
    },
  };
}

/**
 * The learned verifier exported by the training tools (world/verifier.onnx: inputs `image`
 * [B,1,28,28] and `user` int64 [B], output `p_like` [B]); its own encoder (pooled pixels) differs
 * from the generator's, as in the paper.
 */
export async function learnedVerifier(world: DemoWorld): Promise<Verifier> {
  if (!world.verifierUsers) throw new Error(`${world.dir} has no verifier.onnx / verifier_users.txt (export it with rebeca_train export-verifier)`);
  const rows = new Map(world.verifierUsers.map((id, i) => [id, i]));
  const { session } = await createOnnxSession(join(world.dir, "verifier.onnx"), { providers: ["cpu"], intraOpThreads: 1 });
  return {
    name: "learned",
    knows: (id) => rows.has(id),
    async scoreMatrix(users, _embeddings, pixels, items) {
      const per = pixels.length / items;
      const side = Math.round(Math.sqrt(per));
      const m = new Float64Array(users.length * items);
      for (const [u, id] of users.entries()) {
        const user = new BigInt64Array(items).fill(BigInt(rows.get(id)!));
        const out = await session.run({ image: new ort.Tensor("float32", pixels, [items, 1, side, side]), user: new ort.Tensor("int64", user, [items]) });
        const p = out.p_like!.data as Float32Array;
        for (let i = 0; i < items; i++) m[u * items + i] = p[i]!;
      }
      return m;
    },
  };
}

/** Picks the oracle when it knows every user (demo users), else the learned verifier. */
export async function chooseVerifier(world: DemoWorld, userIds: string[], prefer?: "oracle" | "learned"): Promise<Verifier> {
  if (prefer === "learned" || (prefer !== "oracle" && !userIds.every((id) => world.users.has(id)))) {
    const v = await learnedVerifier(world);
    const unknown = userIds.filter((id) => !v.knows(id));
    if (unknown.length) throw new Error(`the learned verifier has no row for ${unknown.length} users (e.g. ${unknown[0]})`);
    return v;
  }
  const unknown = userIds.filter((id) => !world.users.has(id));
  if (unknown.length) throw new Error(`the oracle knows no user ${unknown[0]} (${unknown.length} unknown)`);
  return oracleVerifier(world);
}

/** Parses a result manifest (JSON Lines). */
export function parseResultManifest(text: string): UserResult[] {
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as UserResult);
}

export interface ServedBatch {
  batchId: string;
  modelVersion: string;
  sampler: string;
  steps: number;
  /** @default "linspace" */
  spacing?: string;
  guidance: number;
  manifest: UserResult[];
}

export interface EvaluateServedOptions {
  batch: ServedBatch;
  world: DemoWorld;
  encoder: LoadedEncoder;
  /** Reads an object by its s3:// URI. */
  read: (uri: string) => Promise<Uint8Array>;
  verifier?: "oracle" | "learned";
  permutations?: number;
  /** Users whose images go into the report's grids. @default 12 */
  galleryUsers?: number;
  label?: string;
  /** Concurrent object reads. @default 16 */
  concurrency?: number;
}

export interface ServedEvaluation {
  run: RunReport;
  /** Per user: liked catalogue items and generated images as PNG data URIs (the report's grids). */
  gallery: Record<string, { liked: string[]; generated: string[] }>;
  seconds: { read: number; encode: number; score: number };
}

const dataUri = (png: Uint8Array) => `data:image/png;base64,${Buffer.from(png).toString("base64")}`;

/**
 * Scores what the pipeline produced: reads every succeeded user's PNGs, re-encodes them with the
 * model's image encoder, scores them with the verifier and runs the permutation test and retrieval.
 */
export async function evaluateServedBatch(o: EvaluateServedOptions): Promise<ServedEvaluation> {
  const t0 = Date.now();
  const ok = o.batch.manifest.filter((l) => l.images && l.images.length > 0);
  if (ok.length < 2) throw new Error(`batch ${o.batch.batchId} has ${ok.length} users with images; the permutation test needs at least 2`);
  const users = ok.map((l) => l.user_id);
  const refs = ok.flatMap((l, u) => l.images!.map((img) => ({ u, uri: img.uri })));
  const pngs: Uint8Array[] = new Array(refs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency ?? 16, refs.length) }, async () => {
      while (next < refs.length) {
        const k = next++;
        pngs[k] = await o.read(refs[k]!.uri);
      }
    }),
  );
  const t1 = Date.now();
  const { dim, channels, height, width } = o.encoder;
  const per = channels * height * width;
  const pixels = new Float32Array(refs.length * per);
  pngs.forEach((png, k) => pixels.set(decodePng(png, channels).pixels, k * per));
  const embeddings = await o.encoder.encode(pixels, refs.length);
  const t2 = Date.now();
  const verifier = await chooseVerifier(o.world, users, o.verifier);
  const matrix = await verifier.scoreMatrix(users, embeddings, pixels, refs.length);
  const items = refs.length;
  const run = evaluateRun(
    {
      label:
        o.label ?? `${o.batch.sampler}-${o.batch.steps}${o.batch.spacing && o.batch.sampler !== "ddpm" ? `-${o.batch.spacing}` : ""} g=${o.batch.guidance}`,
      batchId: o.batch.batchId,
      modelVersion: o.batch.modelVersion,
      sampler: o.batch.sampler,
      steps: o.batch.steps,
      ...(o.batch.spacing ? { spacing: o.batch.spacing } : {}),
      guidance: o.batch.guidance,
      verifier: verifier.name,
      users,
      labels: refs.map((r) => r.u),
      embeddings,
      dim,
      score: (u, i) => matrix[u * items + i]!,
      catalogue: o.world.catalogue,
      pools: users.map((id) => o.world.pools.get(id) ?? { liked: [], disliked: [] }),
    },
    o.permutations ?? 1000,
  );
  const t3 = Date.now();
  const gallery: ServedEvaluation["gallery"] = {};
  const shown = [...run.perUser].sort((a, b) => b.own - a.own).slice(0, o.galleryUsers ?? 12);
  for (const r of shown) {
    const u = users.indexOf(r.userId);
    const liked = (o.world.pools.get(r.userId)?.liked ?? []).slice(0, 8).map((item) => {
      const gray = Float32Array.from(o.world.pixels.subarray(item * per, (item + 1) * per), (v) => v / 255);
      return dataUri(encodePng({ pixels: gray, channels: 1, height, width }));
    });
    gallery[r.userId] = { liked, generated: refs.flatMap((ref, k) => (ref.u === u ? [dataUri(pngs[k]!)] : [])) };
  }
  return { run, gallery, seconds: { read: (t1 - t0) / 1000, encode: (t2 - t1) / 1000, score: (t3 - t2) / 1000 } };
}
