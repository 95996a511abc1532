/*
 * The image encoder the evaluation re-encodes images with is loaded like every other model file:
 * its manifest validated and its bytes checked against the sha256 the manifest pins. A copy of the
 * committed demo decoder with one byte appended to encoder.onnx is refused, naming the file; the
 * untouched copy loads and encodes (so the refusal is the tampering's doing).
 */
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadImageEncoder } from "./served.js";

const DECODER = fileURLToPath(new URL("../../../models/demo-v1/decoder", import.meta.url));

describe("loadImageEncoder", () => {
  const dirs: string[] = [];
  const versionCopy = () => {
    const dir = mkdtempSync(join(tmpdir(), "rebeca-encoder-"));
    dirs.push(dir);
    cpSync(DECODER, join(dir, "decoder"), { recursive: true });
    return dir;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("loads the pinned encoder and encodes with it", async () => {
    const encoder = await loadImageEncoder(versionCopy());
    const pixels = new Float32Array(2 * encoder.channels * encoder.height * encoder.width).fill(0.5);
    const embeddings = await encoder.encode(pixels, 2);
    expect(embeddings.length).toBe(2 * encoder.dim);
    expect(embeddings.every(Number.isFinite)).toBe(true);
  });

  it("refuses an encoder.onnx whose sha256 is not the manifest's", async () => {
    const dir = versionCopy();
    appendFileSync(join(dir, "decoder", "encoder.onnx"), Buffer.from([0]));
    await expect(loadImageEncoder(dir)).rejects.toThrow(`sha256 mismatch for ${join(dir, "decoder", "encoder.onnx")}`);
  });

  it("refuses a decoder manifest that does not validate, naming the problem", async () => {
    const dir = versionCopy();
    const path = join(dir, "decoder", "manifest.json");
    const manifest = JSON.parse(readFileSync(path, "utf8")) as { embedding_dim: unknown };
    manifest.embedding_dim = -1;
    writeFileSync(path, JSON.stringify(manifest));
    await expect(loadImageEncoder(dir)).rejects.toThrow(/embedding_dim/);
  });
});
