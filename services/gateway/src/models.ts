import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ModelInfo } from "./validate.js";

/**
 * The model versions the gateway accepts: every `<dir>/<version>/manifest.json` of the prior
 * format. Only metadata is read here; workers load and verify the weights.
 */
export async function loadModelCatalog(modelsDir: string): Promise<Map<string, ModelInfo>> {
  const catalog = new Map<string, ModelInfo>();
  for (const entry of await readdir(modelsDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    let text: string;
    try {
      text = await readFile(join(modelsDir, entry.name, "manifest.json"), "utf8");
    } catch {
      continue;
    }
    const manifest = JSON.parse(text) as {
      format?: string;
      version?: string;
      schedule?: { timesteps?: number };
      defaults?: ModelInfo["defaults"];
    };
    if (manifest.format !== "rebeca.prior/v1" || !manifest.version || !manifest.defaults || !manifest.schedule?.timesteps) {
      throw new Error(`${join(modelsDir, entry.name, "manifest.json")}: not a rebeca.prior/v1 manifest`);
    }
    catalog.set(manifest.version, { version: manifest.version, timesteps: manifest.schedule.timesteps, defaults: manifest.defaults });
  }
  return catalog;
}
