import { createHash } from "node:crypto";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, startProcess, startStack, startService, type Stack } from "@rebeca/devstack";

/*
 * Model files are verified by sha256 at load: a worker started on a tampered copy of the models
 * directory must refuse to start (non-zero exit) with a message naming the file. A clean copy of
 * the same directory starts, so the refusals are the tampering's doing.
 */
describe("model integrity: a sha256 mismatch refuses to start, naming the file", () => {
  let stack: Stack;
  const dirs: string[] = [];

  beforeAll(async () => {
    stack = await startStack({ services: [] });
  });
  afterAll(async () => {
    await stack?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function modelsCopy(): string {
    const dir = mkdtempSync(join(tmpdir(), "rebeca-models-"));
    dirs.push(dir);
    cpSync(`${REPO_ROOT}models`, dir, { recursive: true });
    return dir;
  }

  async function runUntilExit(service: "prior-worker" | "decoder-worker", modelsDir: string) {
    const p = startProcess(service, process.execPath, [`${REPO_ROOT}services/${service}/dist/main.js`], {
      ...stack.envFor(service),
      MODELS_DIR: modelsDir,
      HTTP_PORT: "0",
      HTTP_HOST: "127.0.0.1",
    });
    const timer = setTimeout(() => p.kill(), 60_000);
    const code = await p.exited;
    clearTimeout(timer);
    return { code, output: p.lines.join("\n") };
  }

  it.each([
    ["prior-worker", "demo-v1/prior.onnx"],
    ["prior-worker", "demo-v1/user_table.f32"],
    ["decoder-worker", "demo-v1/decoder/decoder.onnx"],
  ] as const)("%s refuses a tampered %s", async (service, file) => {
    const dir = modelsCopy();
    appendFileSync(join(dir, file), Buffer.from([0]));
    const { code, output } = await runUntilExit(service, dir);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(output).toContain(`sha256 mismatch for ${join(dir, file)}`);
    expect(output).not.toMatch(/started"/);
  });

  it("decoder-worker refuses a decoder manifest that no longer matches the sha256 its prior manifest pins", async () => {
    const dir = modelsCopy();
    const path = join(dir, "demo-v1/decoder/manifest.json");
    const manifest = JSON.parse(readFileSync(path, "utf8")) as { files: { decoder: { sha256: string } } };
    // Re-pin the decoder to a swapped file: the decoder manifest is self-consistent but not the one shipped.
    writeFileSync(join(dir, "demo-v1/decoder/decoder.onnx"), readFileSync(join(dir, "demo-v1/decoder/encoder.onnx")));
    manifest.files.decoder.sha256 = createHash("sha256")
      .update(readFileSync(join(dir, "demo-v1/decoder/decoder.onnx")))
      .digest("hex");
    writeFileSync(path, JSON.stringify(manifest, null, 2));
    const { code, output } = await runUntilExit("decoder-worker", dir);
    expect(code).not.toBe(0);
    expect(output).toContain(`sha256 mismatch for ${path}`);
  });

  it("the same copy, untouched, starts", async () => {
    const dir = modelsCopy();
    const svc = await startService("prior-worker", { ...stack.envFor("prior-worker"), MODELS_DIR: dir });
    expect(svc.started.msg).toBe("prior worker started");
    await svc.process.stop();
  });
});
