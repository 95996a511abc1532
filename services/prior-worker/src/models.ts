import { join } from "node:path";
import { createOnnxPrior, createOnnxSession, createPriorSampler, loadPriorModelFiles, type SessionOptions } from "@rebeca/inference";
import type { LoadedPrior } from "./backend.js";

/**
 * Loads each version: verifies every file's sha256 (a mismatch stops the worker with the file's
 * name) and creates the ONNX session under the provider policy. `report` gets what was resolved,
 * for the start-up log.
 */
export async function loadPriors(
  modelsDir: string,
  versions: string[],
  session: SessionOptions,
  report: (loaded: { version: string; embeddingDim: number; info: Record<string, unknown> }) => void,
): Promise<Map<string, LoadedPrior>> {
  const loaded = new Map<string, LoadedPrior>();
  for (const version of versions) {
    const files = await loadPriorModelFiles(join(modelsDir, version, "manifest.json"));
    if (files.manifest.version !== version)
      throw new Error(`${files.manifestPath}: version "${files.manifest.version}" does not match its directory "${version}"`);
    const resolved = await createOnnxSession(files.prior.bytes, session);
    const model = createOnnxPrior(resolved.session, { embeddingDim: files.manifest.embedding_dim, userDim: files.manifest.user_dim });
    loaded.set(version, {
      sampler: createPriorSampler({ model, userTable: files.userTable, manifest: files.manifest }),
      users: files.userTable,
      release: () => resolved.session.release(),
    });
    report({
      version,
      embeddingDim: files.manifest.embedding_dim,
      info: {
        version,
        providers: resolved.providers,
        rejected: resolved.rejected,
        priorSha256: files.prior.sha256,
        manifestSha256: files.manifestSha256,
        users: files.userTable.rows - 1,
      },
    });
  }
  return loaded;
}
