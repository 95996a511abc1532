/**
 * Model manifests (docs/model-format.md): zod schemas, sha256-verified loading, and the user table.
 * Loading refuses to start on any mismatch, because a prior paired with the wrong user table or
 * decoder produces plausible-looking but wrong images.
 *
 * Also exported on its own as `@rebeca/inference/manifest`, which loads no onnxruntime: the
 * gateway and the evaluation tools read manifests without the native runtime. Keep this module's
 * imports free of `./onnx.js` (manifest-entry.test.ts checks).
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { SAMPLER_NAMES } from "./sampler.js";
import { TIMESTEP_SPACINGS, validateAlphasCumprod } from "./schedule.js";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits");
const fileRef = z.object({ path: z.string().min(1), sha256: sha256Hex }).loose();
const positiveInt = z.number().int().positive();

export const priorManifestSchema = z
  .object({
    format: z.literal("rebeca.prior/v1"),
    version: z.string().min(1),
    architecture: z.enum(["mlp", "rebeca"]),
    embedding_dim: positiveInt,
    user_dim: positiveInt,
    prediction: z.literal("x0"),
    schedule: z.object({
      name: z.literal("squaredcos_cap_v2"),
      timesteps: positiveInt,
      alphas_cumprod: z.array(z.number()),
    }),
    clip_x0: z.number().positive(),
    null_like: z.number().int().nonnegative(),
    like: z.number().int().nonnegative(),
    users: z.object({ rows: positiveInt, null_row: z.number().int().nonnegative() }),
    /** What a request gets when it names no sampler/steps/guidance/spacing; written by the evaluation. */
    defaults: z
      .object({
        guidance: z.number(),
        /** Steps of every sampler except DDPM (which visits all timesteps). */
        steps: positiveInt,
        sampler: z.enum(SAMPLER_NAMES),
        /** Absent in manifests older than the spacing option: "linspace". */
        spacing: z.enum(TIMESTEP_SPACINGS).optional(),
      })
      .loose(),
    files: z
      .object({
        prior: fileRef,
        user_table: fileRef.extend({
          dtype: z.literal("float32"),
          shape: z.tuple([positiveInt, positiveInt]),
        }),
        user_ids: fileRef,
        parity: fileRef.optional(),
        decoder: fileRef.optional(),
      })
      .catchall(fileRef),
    training: z.unknown().optional(),
  })
  .loose()
  .superRefine((m, ctx) => {
    for (const p of validateAlphasCumprod(m.schedule.alphas_cumprod, m.schedule.timesteps)) {
      ctx.addIssue({ code: "custom", path: ["schedule", "alphas_cumprod"], message: p });
    }
    const [rows, dim] = m.files.user_table.shape;
    if (rows !== m.users.rows) {
      ctx.addIssue({ code: "custom", path: ["files", "user_table", "shape"], message: `rows ${rows} ≠ users.rows ${m.users.rows}` });
    }
    if (dim !== m.user_dim) {
      ctx.addIssue({ code: "custom", path: ["files", "user_table", "shape"], message: `dim ${dim} ≠ user_dim ${m.user_dim}` });
    }
    if (m.users.null_row >= m.users.rows) {
      ctx.addIssue({ code: "custom", path: ["users", "null_row"], message: "null_row out of range" });
    }
    if (m.defaults.steps > m.schedule.timesteps) {
      ctx.addIssue({ code: "custom", path: ["defaults", "steps"], message: "steps exceed schedule timesteps" });
    }
  });
export type PriorManifest = z.infer<typeof priorManifestSchema>;

const ioNames = z.object({ input: z.string().min(1), output: z.string().min(1) });

export const decoderManifestSchema = z
  .object({
    format: z.literal("rebeca.decoder/v1"),
    kind: z.literal("single-shot"),
    embedding_dim: positiveInt,
    channels: z.union([z.literal(1), z.literal(3)]),
    height: positiveInt,
    width: positiveInt,
    range: z.tuple([z.number(), z.number()]),
    files: z.object({ decoder: fileRef, encoder: fileRef.optional(), parity: fileRef.optional() }).catchall(fileRef),
    io: z.object({ decoder: ioNames, encoder: ioNames.optional() }),
  })
  .loose();
export type DecoderManifest = z.infer<typeof decoderManifestSchema>;

const latentIo = z.object({
  unet: z.object({ sample: z.string().min(1), timestep: z.string().min(1), condition: z.string().min(1), output: z.string().min(1) }),
  image_proj: ioNames.optional(),
  vae_decoder: ioNames,
  /** The embedding space's image encoder, when the version ships it (evaluation re-encodes served images). */
  encoder: ioNames.optional(),
});

/** A latent-diffusion decoder (docs/model-format.md, "Latent-diffusion decoder manifest"). */
export const latentDecoderManifestSchema = z
  .object({
    format: z.literal("rebeca.decoder/v1"),
    kind: z.literal("latent-diffusion"),
    family: z.string().min(1),
    embedding_dim: positiveInt,
    channels: z.union([z.literal(1), z.literal(3)]),
    height: positiveInt,
    width: positiveInt,
    range: z.tuple([z.literal(0), z.literal(1)]),
    latent: z.object({ channels: positiveInt, height: positiveInt, width: positiveInt, scale: z.number().positive() }),
    condition: z.object({ tokens: positiveInt, dim: positiveInt }).optional(),
    scheduler: z
      .object({
        prediction: z.literal("epsilon"),
        beta_schedule: z.string(),
        steps_offset: z.number().int().nonnegative(),
        timesteps: positiveInt,
        alphas_cumprod: z.array(z.number()),
      })
      .loose(),
    defaults: z.object({ scheduler: z.enum(["ddim", "euler", "pndm"]), steps: positiveInt, guidance: z.number() }),
    negative: z.enum(["zero-embedding-projected", "zero-embedding"]),
    vae_range: z.tuple([z.number(), z.number()]),
    noise_stream: z.number().int().nonnegative().max(0xffffffff),
    files: z.object({ unet: fileRef, image_proj: fileRef.optional(), vae_decoder: fileRef, parity: fileRef.optional() }).catchall(fileRef),
    io: latentIo,
  })
  .loose()
  .superRefine((m, ctx) => {
    for (const p of validateAlphasCumprod(m.scheduler.alphas_cumprod, m.scheduler.timesteps)) {
      ctx.addIssue({ code: "custom", path: ["scheduler", "alphas_cumprod"], message: p });
    }
    if (m.defaults.steps > m.scheduler.timesteps) ctx.addIssue({ code: "custom", path: ["defaults", "steps"], message: "steps exceed scheduler timesteps" });
    const projected = m.negative === "zero-embedding-projected";
    if (projected !== (m.files.image_proj !== undefined) || projected !== (m.io.image_proj !== undefined) || projected !== (m.condition !== undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["negative"],
        message: "zero-embedding-projected needs files.image_proj, io.image_proj and condition (and zero-embedding none of them)",
      });
    }
    if (!(m.vae_range[1] > m.vae_range[0])) ctx.addIssue({ code: "custom", path: ["vae_range"], message: "must be [low, high] with high > low" });
  });
export type LatentDecoderManifest = z.infer<typeof latentDecoderManifestSchema>;

/** Either kind of decoder; both may ship the embedding space's image encoder (evaluation re-encodes served images). */
export const anyDecoderManifestSchema = z.union([decoderManifestSchema, latentDecoderManifestSchema]);
export type AnyDecoderManifest = z.infer<typeof anyDecoderManifestSchema>;

/** Thrown when a file's content does not match the sha256 its manifest declares. */
export class ChecksumMismatchError extends Error {
  override readonly name = "ChecksumMismatchError";
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`sha256 mismatch for ${file}: manifest says ${expected}, file has ${actual}`);
  }
}

/** Thrown when a manifest does not parse; lists every problem at once. */
export class ManifestError extends Error {
  override readonly name = "ManifestError";
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid manifest ${file}:\n  ${problems.join("\n  ")}`);
  }
}

/** Hex sha256 of bytes. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A manifest-listed file after its hash was checked. */
export interface VerifiedFile {
  /** Absolute path. */
  readonly path: string;
  readonly sha256: string;
  readonly bytes: Uint8Array;
}

async function readJson(path: string): Promise<{ raw: unknown; bytes: Uint8Array }> {
  const bytes = await readFile(path);
  try {
    return { raw: JSON.parse(bytes.toString("utf8")) as unknown, bytes };
  } catch (e) {
    throw new ManifestError(path, [`not JSON: ${(e as Error).message}`]);
  }
}

function parseWith<T>(schema: z.ZodType<T>, raw: unknown, file: string): T {
  const r = schema.safeParse(raw);
  if (!r.success) {
    throw new ManifestError(
      file,
      r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
    );
  }
  return r.data;
}

async function verifyFiles(dir: string, files: Record<string, { path: string; sha256: string } | undefined>): Promise<Record<string, VerifiedFile>> {
  const entries = Object.entries(files).filter((e): e is [string, { path: string; sha256: string }] => e[1] !== undefined);
  const out: Record<string, VerifiedFile> = {};
  await Promise.all(
    entries.map(async ([key, ref]) => {
      const path = resolve(dir, ref.path);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (e) {
        throw new Error(`cannot read ${key} file ${path}: ${(e as Error).message}`, { cause: e });
      }
      const actual = sha256(bytes);
      if (actual !== ref.sha256) throw new ChecksumMismatchError(path, ref.sha256, actual);
      out[key] = { path, sha256: actual, bytes };
    }),
  );
  return out;
}

/** A parsed and validated manifest whose files are not read yet. */
export interface ParsedManifest<M> {
  readonly manifestPath: string;
  /** sha256 of manifest.json itself, worth logging at start. */
  readonly manifestSha256: string;
  readonly manifest: M;
}

/** A parsed manifest with every file it lists verified. */
export interface VerifiedManifest<M> extends ParsedManifest<M> {
  /** Verified files by manifest key (`prior`, `user_table`, `user_ids`, `parity`, `decoder`, …). */
  readonly files: Readonly<Record<string, VerifiedFile>>;
}

type ListsFiles = { files: Record<string, { path: string; sha256: string } | undefined> };

/**
 * Reads a manifest and validates it with `schema`, listing every problem at once; reads none of
 * the files it lists (for services that need only its metadata, such as the gateway).
 */
export async function parseManifest<M>(schema: z.ZodType<M>, manifestPath: string): Promise<ParsedManifest<M>> {
  const path = resolve(manifestPath);
  const { raw, bytes } = await readJson(path);
  return { manifestPath: path, manifestSha256: sha256(bytes), manifest: parseWith(schema, raw, path) };
}

/**
 * Reads the files a parsed manifest lists, each checked against its sha256: all of them, or only
 * the `keys` named (a key the manifest lacks is an error).
 */
export async function verifyManifestFiles<M extends ListsFiles>(parsed: ParsedManifest<M>, keys?: readonly string[]): Promise<VerifiedManifest<M>> {
  let listed = parsed.manifest.files;
  if (keys) {
    const missing = keys.filter((k) => listed[k] === undefined);
    if (missing.length > 0)
      throw new ManifestError(
        parsed.manifestPath,
        missing.map((k) => `files.${k}: required here but missing`),
      );
    listed = Object.fromEntries(keys.map((k) => [k, listed[k]]));
  }
  return { ...parsed, files: await verifyFiles(dirname(parsed.manifestPath), listed) };
}

/** Parses a manifest with `schema` and verifies the sha256 of every file it lists. */
async function loadVerifiedManifest<M extends ListsFiles>(schema: z.ZodType<M>, manifestPath: string): Promise<VerifiedManifest<M>> {
  return verifyManifestFiles(await parseManifest(schema, manifestPath));
}

/** A prior model version with every file verified. */
export interface PriorModelFiles extends VerifiedManifest<PriorManifest> {
  readonly prior: VerifiedFile;
  readonly userTable: UserTable;
  readonly alphasCumprod: Float64Array;
}

/** Parses and validates a prior manifest, verifies the sha256 of every listed file, reads the user table. */
export async function loadPriorModelFiles(manifestPath: string): Promise<PriorModelFiles> {
  const loaded = await loadVerifiedManifest(priorManifestSchema, manifestPath);
  const { manifest, files } = loaded;
  const userTable = createUserTable({
    data: files["user_table"]!.bytes,
    rows: manifest.users.rows,
    dim: manifest.user_dim,
    nullRow: manifest.users.null_row,
    ids: new TextDecoder().decode(files["user_ids"]!.bytes),
  });
  return { ...loaded, prior: files["prior"]!, userTable, alphasCumprod: Float64Array.from(manifest.schedule.alphas_cumprod) };
}

/** A single-shot decoder with every file verified. */
export type DecoderModelFiles = VerifiedManifest<DecoderManifest>;

/** Parses a decoder manifest and verifies the sha256 of every listed file. */
export function loadDecoderModelFiles(manifestPath: string): Promise<DecoderModelFiles> {
  return loadVerifiedManifest(decoderManifestSchema, manifestPath);
}

/** A latent-diffusion decoder with every file verified. */
export type LatentDecoderModelFiles = VerifiedManifest<LatentDecoderManifest>;

/** Parses a latent-diffusion decoder manifest and verifies the sha256 of every listed file. */
export function loadLatentDecoderModelFiles(manifestPath: string): Promise<LatentDecoderModelFiles> {
  return loadVerifiedManifest(latentDecoderManifestSchema, manifestPath);
}

/** Parses and validates a prior manifest without reading its files (the gateway needs only its metadata). */
export function parsePriorManifest(manifestPath: string): Promise<ParsedManifest<PriorManifest>> {
  return parseManifest(priorManifestSchema, manifestPath);
}

/**
 * The path of the decoder manifest a prior version pairs with (`files.decoder`), after checking it
 * against the sha256 the prior manifest pins: a decoder swapped for another, even one whose own
 * manifest is self-consistent, is refused.
 */
export async function pairedDecoderManifest(priorManifestPath: string): Promise<string> {
  const { files } = await verifyManifestFiles(await parsePriorManifest(priorManifestPath), ["decoder"]);
  return files["decoder"]!.path;
}

/** The `kind` a decoder manifest declares (`single-shot` when absent), to pick its loader. */
export async function decoderManifestKind(manifestPath: string): Promise<string> {
  const { raw } = await readJson(resolve(manifestPath));
  const kind = (raw as { kind?: unknown } | null)?.kind;
  return typeof kind === "string" ? kind : "single-shot";
}

/** The per-user conditioning rows: float32 [rows, U], the last row is usually the null user. */
export interface UserTable {
  readonly rows: number;
  readonly dim: number;
  readonly nullRow: number;
  /** Row i as a view (do not mutate). */
  row(index: number): Float32Array;
  /** The null user's row. */
  nullUser(): Float32Array;
  /** Row of an external user id, or undefined when unknown. */
  rowOf(userId: string): number | undefined;
  /** External id of row i (undefined for the null row). */
  idOf(index: number): string | undefined;
}

export interface UserTableSource {
  /** float32 little-endian bytes, rows·dim·4 long. */
  readonly data: Uint8Array;
  readonly rows: number;
  readonly dim: number;
  readonly nullRow: number;
  /** Contents of user_ids.txt: the id of row i on line i, for every row but the null row. */
  readonly ids?: string;
}

/** Builds a {@link UserTable} from raw bytes; copies so that alignment and endianness are right. */
export function createUserTable(src: UserTableSource): UserTable {
  const { rows, dim, nullRow } = src;
  const n = rows * dim;
  if (src.data.byteLength !== n * 4) {
    throw new RangeError(`user table has ${src.data.byteLength} bytes, expected ${rows}×${dim}×4`);
  }
  const dv = new DataView(src.data.buffer, src.data.byteOffset, src.data.byteLength);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = dv.getFloat32(i * 4, true);

  const idList = src.ids === undefined ? [] : src.ids.split("\n").map((s) => s.replace(/\r$/, ""));
  while (idList.length > 0 && idList[idList.length - 1] === "") idList.pop();
  if (src.ids !== undefined && idList.length !== rows - 1) {
    throw new RangeError(`user_ids has ${idList.length} ids, expected ${rows - 1} (rows minus the null row)`);
  }
  const byId = new Map<string, number>();
  // Ids name the non-null rows in order, skipping the null row wherever it is.
  const rowOfLine = (line: number): number => (line >= nullRow ? line + 1 : line);
  idList.forEach((id, line) => {
    if (byId.has(id)) throw new RangeError(`user_ids: duplicate id ${JSON.stringify(id)}`);
    byId.set(id, rowOfLine(line));
  });
  const idByRow = new Map<number, string>();
  for (const [id, r] of byId) idByRow.set(r, id);

  const row = (index: number): Float32Array => {
    if (!Number.isInteger(index) || index < 0 || index >= rows) {
      throw new RangeError(`user row ${index} out of range 0..${rows - 1}`);
    }
    return values.subarray(index * dim, (index + 1) * dim);
  };
  return {
    rows,
    dim,
    nullRow,
    row,
    nullUser: () => row(nullRow),
    rowOf: (id) => byId.get(id),
    idOf: (index) => idByRow.get(index),
  };
}

/**
 * The model versions a worker serves: the configured ones, or every subdirectory of `modelsDir`
 * when none are configured.
 */
export async function resolveModelVersions(modelsDir: string, configured: readonly string[]): Promise<string[]> {
  if (configured.length > 0) return [...configured];
  const entries = await readdir(modelsDir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}
