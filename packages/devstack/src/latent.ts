import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./services.js";

/**
 * A temporary MODELS_DIR holding one version that pairs the committed demo prior with a
 * latent-diffusion decoder directory (e.g. packages/inference/test-fixtures/latent-tiny), so tests
 * and benchmarks run a latent version without committing another prior. Returns the directory.
 */
export function assembleLatentModelsDir(decoderDir: string, version = "latent-v1"): string {
  const dir = mkdtempSync(join(tmpdir(), "rebeca-latent-"));
  const v = join(dir, version);
  cpSync(join(REPO_ROOT, "models", "demo-v1"), v, { recursive: true, filter: (src) => !/\/demo-v1\/(world|decoder)(\/|$)/.test(src) });
  cpSync(decoderDir, join(v, "decoder"), { recursive: true });
  const manifest = JSON.parse(readFileSync(join(v, "manifest.json"), "utf8")) as { version: string; files: Record<string, { path: string; sha256: string }> };
  manifest.version = version;
  manifest.files["decoder"] = {
    path: "decoder/manifest.json",
    sha256: createHash("sha256")
      .update(readFileSync(join(v, "decoder", "manifest.json")))
      .digest("hex"),
  };
  writeFileSync(join(v, "manifest.json"), JSON.stringify(manifest, null, 1));
  return dir;
}
