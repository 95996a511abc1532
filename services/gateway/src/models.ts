import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { parsePriorManifest } from "@rebeca/inference/manifest";
import type { ModelInfo } from "./validate.js";

/**
 * The model versions the gateway accepts: every `<dir>/<version>/manifest.json`, parsed and
 * validated as a prior manifest (a bad one stops the start, naming every problem). Only metadata
 * is read here, without onnxruntime; workers load and verify the weights. `defaultVersion` must
 * be among them.
 */
export async function loadModelCatalog(modelsDir: string, defaultVersion: string): Promise<Map<string, ModelInfo>> {
  const catalog = new Map<string, ModelInfo>();
  for (const entry of await readdir(modelsDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(modelsDir, entry.name, "manifest.json");
    const parsed = await parsePriorManifest(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null; // a directory without a manifest is not a version
      throw err;
    });
    if (!parsed) continue;
    const m = parsed.manifest;
    catalog.set(m.version, { version: m.version, timesteps: m.schedule.timesteps, defaults: m.defaults });
  }
  if (!catalog.has(defaultVersion)) {
    throw new Error(`DEFAULT_MODEL_VERSION "${defaultVersion}" has no manifest in ${modelsDir} (found: ${[...catalog.keys()].join(", ") || "none"})`);
  }
  return catalog;
}
