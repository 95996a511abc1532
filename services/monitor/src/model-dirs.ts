/**
 * Where the monitor finds what it scores a version with: the version's own directory (embedded in
 * MODELS_DIR, or fetched from the registry and sha256-verified through the same model source and
 * cache the workers use) for its image encoder, and a `world/` for the verifiers. Registry versions
 * publish no world (it is evaluation data, not model), so they are judged by the world of
 * MONITOR_WORLD_VERSION — the users' tastes do not change with the model, and judging both arms of
 * a canary by one verifier is what makes their lifts comparable.
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { RegistryIntegrityError, VersionNotPublishedError, type ModelSource } from "@rebeca/registry";
import { SkipError } from "./scorer.js";

/** A version's files for scoring. */
export interface ScoringDirs {
  /** `<dir>` holds `decoder/` (the image encoder) of the version. */
  modelDir: string;
  /** The `world/` whose verifiers judge the version's images. */
  worldDir: string;
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

export function createScoringDirs(o: {
  modelsDir: string;
  /** The registry's model source; absent when MODEL_CACHE_DIR is empty (embedded versions only). */
  source?: ModelSource;
  /** The embedded version whose world judges versions that ship none. */
  worldVersion: string;
}): (version: string) => Promise<ScoringDirs> {
  return async (version) => {
    let base = o.modelsDir;
    if (o.source) {
      base = await o.source.ensure(version).catch((err: Error) => {
        if (err instanceof VersionNotPublishedError || err instanceof RegistryIntegrityError) throw new SkipError("no_model", err.message);
        throw err;
      });
    }
    const modelDir = join(base, version);
    const own = join(modelDir, "world");
    const worldDir = (await exists(own)) ? own : join(o.modelsDir, o.worldVersion, "world");
    return { modelDir, worldDir };
  };
}
