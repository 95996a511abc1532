import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { parsePriorManifest, type PriorManifest } from "@rebeca/inference/manifest";
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
    catalog.set(parsed.manifest.version, infoOf(parsed.manifest));
  }
  if (!catalog.has(defaultVersion)) {
    throw new Error(`DEFAULT_MODEL_VERSION "${defaultVersion}" has no manifest in ${modelsDir} (found: ${[...catalog.keys()].join(", ") || "none"})`);
  }
  return catalog;
}

const infoOf = (m: PriorManifest): ModelInfo => ({ version: m.version, timesteps: m.schedule.timesteps, defaults: m.defaults });

/** The ModelInfo of `<dir>/<version>/manifest.json` (a version fetched from the registry); its manifest must name `version`. */
export async function modelInfoOf(dir: string, version: string): Promise<ModelInfo> {
  const parsed = await parsePriorManifest(join(dir, version, "manifest.json"));
  if (parsed.manifest.version !== version) throw new Error(`${parsed.manifestPath}: names version "${parsed.manifest.version}", published as "${version}"`);
  return infoOf(parsed.manifest);
}
