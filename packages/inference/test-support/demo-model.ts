/** Locates the committed demo model for integration tests; a missing artifact is a loud failure. */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** models/demo-v1, or REBECA_MODEL_DIR when set. */
export const DEMO_DIR = process.env["REBECA_MODEL_DIR"] ?? fileURLToPath(new URL("../../../models/demo-v1", import.meta.url));

/** models/, or REBECA_MODELS_DIR when set: every non-hidden subdirectory is a model version. */
export const MODELS_DIR = process.env["REBECA_MODELS_DIR"] ?? fileURLToPath(new URL("../../../models", import.meta.url));

/**
 * Every model version directory under {@link MODELS_DIR} (sorted). Throws when there is none or when a
 * subdirectory has no manifest.json: the parity tests run for every version and never skip.
 */
export function modelVersionDirs(): { version: string; dir: string }[] {
  if (!existsSync(MODELS_DIR)) {
    throw new Error(`models directory missing: ${MODELS_DIR}. It is produced by training/regenerate.sh.`);
  }
  const out = readdirSync(MODELS_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => ({ version: e.name, dir: join(MODELS_DIR, e.name) }))
    .sort((a, b) => a.version.localeCompare(b.version));
  if (out.length === 0) throw new Error(`no model version directories under ${MODELS_DIR}`);
  for (const { dir } of out) {
    if (!existsSync(join(dir, "manifest.json"))) {
      throw new Error(`model artifact missing: ${join(dir, "manifest.json")} (every directory under models/ is a version)`);
    }
  }
  return out;
}

/** Absolute path of a demo artifact; throws naming what is missing and who produces it. */
export function demoFile(relative: string): string {
  const path = join(DEMO_DIR, relative);
  if (!existsSync(path)) {
    throw new Error(
      `model artifact missing: ${path}. It is produced by training/ (see docs/model-format.md); ` +
        "these tests never skip, so generate or commit the demo model first.",
    );
  }
  return path;
}

/** Reads a little-endian float32 C-order .npy file. */
export function readNpyF32(path: string): { data: Float32Array; shape: number[] } {
  const buf = readFileSync(path);
  if (buf.toString("latin1", 1, 6) !== "NUMPY") throw new Error(`${path} is not a .npy file`);
  const major = buf[6]!;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString("latin1", start, start + headerLen);
  if (!header.includes("'descr': '<f4'") || header.includes("'fortran_order': True")) {
    throw new Error(`${path}: only C-order <f4 is supported (${header.trim()})`);
  }
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const offset = start + headerLen;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(offset + i * 4);
  return { data, shape };
}
