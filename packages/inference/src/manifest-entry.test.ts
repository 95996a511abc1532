/*
 * `@rebeca/inference/manifest` is what the gateway and the evaluation tools import to read
 * manifests: it must not load onnxruntime-node (a native runtime those processes never use).
 * onnxruntime-node is replaced here by a stand-in that records being loaded; the package root,
 * which does load it, is the control.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";

const loaded = vi.hoisted(() => [] as string[]);
vi.mock("onnxruntime-node", () => {
  loaded.push("onnxruntime-node");
  return {};
});

const MODELS = fileURLToPath(new URL("../../../models/", import.meta.url));
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  exports: Record<string, { source: string; default: string }>;
};

describe("@rebeca/inference/manifest", () => {
  it("is an entry point of the package, pointing at manifest.ts", () => {
    expect(pkg.exports["./manifest"]).toMatchObject({ source: "./src/manifest.ts", default: "./dist/manifest.js" });
  });

  it("parses and verifies manifests without loading onnxruntime-node", async () => {
    const m = await import("./manifest.js");
    const prior = await m.parsePriorManifest(`${MODELS}demo-v1/manifest.json`);
    expect(prior.manifest.version).toBe("demo-v1");
    const decoder = await m.pairedDecoderManifest(`${MODELS}demo-v1/manifest.json`);
    expect(decoder).toBe(`${MODELS}demo-v1/decoder/manifest.json`);
    expect(loaded).toEqual([]);
  });

  it("the package root does load it (so the check above can fail)", async () => {
    await import("./index.js");
    expect(loaded).toEqual(["onnxruntime-node"]);
  });
});
