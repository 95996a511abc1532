import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as ort from "onnxruntime-node";
import { GpuUnavailableError, createOnnxPrior, createOnnxSession, parseProviders, sessionOptionsOf } from "./onnx.js";

const AFFINE = fileURLToPath(new URL("../test-fixtures/affine.onnx", import.meta.url));

describe("parseProviders", () => {
  it("parses a configured order", () => {
    expect(parseProviders(" CUDA, webgpu ,cpu")).toEqual(["cuda", "webgpu", "cpu"]);
    expect(() => parseProviders("cuda,metal")).toThrow(/metal/);
    expect(() => parseProviders(" , ")).toThrow(/empty/);
  });
});

describe("sessionOptionsOf", () => {
  const settings = { ORT_PROVIDERS: ["CUDA", "cpu"], REQUIRE_GPU: true, ORT_INTRA_OP_THREADS: 2, ORT_INTER_OP_THREADS: 1 };
  it("maps a worker's ORT_* settings to session options", () => {
    expect(sessionOptionsOf(settings)).toEqual({ providers: ["cuda", "cpu"], requireGpu: true, intraOpThreads: 2, interOpThreads: 1 });
  });
  it("refuses an unknown provider at start instead of passing it on", () => {
    expect(() => sessionOptionsOf({ ...settings, ORT_PROVIDERS: ["cuda", "metal"] })).toThrow(/metal/);
  });
});

describe("createOnnxSession", () => {
  it("falls back along the configured order to CPU and reports what it resolved", async () => {
    const r = await createOnnxSession(AFFINE, { providers: ["cuda", "webgpu", "cpu"], intraOpThreads: 1, interOpThreads: 1 });
    expect(r.providers).toEqual(["cpu"]);
    expect(r.rejected.map((x) => x.provider)).toEqual(["cuda", "webgpu"]);
    const out = await r.session.run({ x: new ort.Tensor("float32", Float32Array.of(1, 2, 3, 4), [1, 4]) });
    expect(Array.from((out["y"] as ort.Tensor).data as Float32Array)).toEqual([3, 5, 7, 9]);
  });

  it("requireGpu refuses CPU fallback on a machine without a GPU, quickly and clearly", async () => {
    const started = Date.now();
    const err = await createOnnxSession(AFFINE, { providers: ["cuda", "webgpu", "cpu"], requireGpu: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuUnavailableError);
    expect((err as Error).message).toMatch(/requireGpu is set but no GPU execution provider is usable; refusing CPU fallback/);
    expect((err as Error).message).toMatch(/cuda: .*webgpu: /);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("requireGpu with only cpu configured fails without loading anything", async () => {
    await expect(createOnnxSession("/nonexistent.onnx", { providers: ["cpu"], requireGpu: true })).rejects.toThrow(/no GPU provider configured/);
  });
});

describe("createOnnxPrior", () => {
  it("feeds x_t, t, user, like with the contract shapes and dtypes", async () => {
    const seen: Record<string, { type: string; dims: readonly number[] }> = {};
    const prior = createOnnxPrior(
      {
        run: (async (feeds: Record<string, ort.Tensor>) => {
          for (const [k, v] of Object.entries(feeds)) seen[k] = { type: v.type, dims: v.dims };
          return { x0: new ort.Tensor("float32", new Float32Array(2 * 4), [2, 4]) };
        }) as unknown as ort.InferenceSession["run"],
      },
      { embeddingDim: 4, userDim: 3 },
    );
    const out = await prior.predictX0({
      xT: new Float32Array(8),
      t: new BigInt64Array(2),
      user: new Float32Array(6),
      like: BigInt64Array.of(1n, 2n),
      rows: 2,
    });
    expect(out.length).toBe(8);
    expect(seen).toEqual({
      x_t: { type: "float32", dims: [2, 4] },
      t: { type: "int64", dims: [2] },
      user: { type: "float32", dims: [2, 3] },
      like: { type: "int64", dims: [2] },
    });
  });
});
