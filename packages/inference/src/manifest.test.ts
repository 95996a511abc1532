import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ChecksumMismatchError, ManifestError, createUserTable, loadDecoderModelFiles, loadPriorModelFiles, sha256 } from "./manifest.js";
import { cosineAlphasCumprod } from "./schedule.js";

const ROWS = 4;
const U = 3;

function tableBytes(): Uint8Array {
  const buf = new ArrayBuffer(ROWS * U * 4);
  const dv = new DataView(buf);
  for (let i = 0; i < ROWS * U; i++) dv.setFloat32(i * 4, i === 0 ? -1.5 : i / 8, true);
  return new Uint8Array(buf);
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rebeca-manifest-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeModel(overrides: (m: Record<string, unknown>) => void = () => {}): Promise<string> {
  const files: Record<string, Uint8Array> = {
    "prior.onnx": new TextEncoder().encode("not really onnx"),
    "user_table.f32": tableBytes(),
    "user_ids.txt": new TextEncoder().encode("alice\nbob\ncarol\n"),
  };
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  const ref = (path: string) => ({ path, sha256: sha256(files[path]!) });
  const manifest: Record<string, unknown> = {
    format: "rebeca.prior/v1",
    version: "test-v1",
    architecture: "mlp",
    embedding_dim: 8,
    user_dim: U,
    prediction: "x0",
    schedule: { name: "squaredcos_cap_v2", timesteps: 1000, alphas_cumprod: Array.from(cosineAlphasCumprod(1000)) },
    clip_x0: 6,
    null_like: 2,
    like: 1,
    users: { rows: ROWS, null_row: ROWS - 1 },
    defaults: { guidance: 3, steps: 50, sampler: "ddim" },
    files: {
      prior: ref("prior.onnx"),
      user_table: { ...ref("user_table.f32"), dtype: "float32", shape: [ROWS, U] },
      user_ids: ref("user_ids.txt"),
    },
    training: { steps: 1 },
  };
  overrides(manifest);
  const path = join(dir, "manifest.json");
  await writeFile(path, JSON.stringify(manifest));
  return path;
}

describe("loadPriorModelFiles", () => {
  it("loads a valid model and its user table", async () => {
    const m = await loadPriorModelFiles(await writeModel());
    expect(m.manifest.version).toBe("test-v1");
    expect(m.alphasCumprod.length).toBe(1000);
    expect(m.prior.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.userTable.rows).toBe(ROWS);
    expect(m.userTable.rowOf("bob")).toBe(1);
    expect(m.userTable.rowOf("nobody")).toBeUndefined();
    expect(m.userTable.idOf(2)).toBe("carol");
    expect(m.userTable.idOf(3)).toBeUndefined();
    expect(Array.from(m.userTable.row(0))).toEqual([-1.5, 1 / 8, 2 / 8]);
    expect(Array.from(m.userTable.nullUser())).toEqual([9 / 8, 10 / 8, 11 / 8]);
  });

  it("refuses a file whose sha256 differs, naming the file and both hashes", async () => {
    const path = await writeModel();
    await writeFile(join(dir, "user_ids.txt"), "alice\nbob\nmallory\n");
    const expected = sha256(new TextEncoder().encode("alice\nbob\ncarol\n"));
    const actual = sha256(new TextEncoder().encode("alice\nbob\nmallory\n"));
    const err = await loadPriorModelFiles(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect((err as Error).message).toContain(join(dir, "user_ids.txt"));
    expect((err as Error).message).toContain(expected);
    expect((err as Error).message).toContain(actual);
  });

  it("names a missing file", async () => {
    const path = await writeModel();
    await rm(join(dir, "prior.onnx"));
    await expect(loadPriorModelFiles(path)).rejects.toThrow(/prior file .*prior\.onnx/);
  });

  it("reports every manifest problem at once", async () => {
    const path = await writeModel((m) => {
      (m["schedule"] as { alphas_cumprod: number[] }).alphas_cumprod = [0.9, 0.95];
      m["clip_x0"] = -1;
    });
    const err = (await loadPriorModelFiles(path).catch((e: unknown) => e)) as ManifestError;
    expect(err).toBeInstanceOf(ManifestError);
    expect(err.message).toMatch(/2 values, expected 1000/);
    expect(err.message).toMatch(/clip_x0/);
  });

  it("rejects a non-monotone schedule", async () => {
    const path = await writeModel((m) => {
      const a = Array.from(cosineAlphasCumprod(1000));
      a[500] = a[400]!;
      (m["schedule"] as { alphas_cumprod: number[] }).alphas_cumprod = a;
    });
    await expect(loadPriorModelFiles(path)).rejects.toThrow(/not strictly decreasing at index 500/);
  });
});

describe("loadDecoderModelFiles", () => {
  it("verifies decoder files", async () => {
    await mkdir(join(dir, "decoder"));
    await writeFile(join(dir, "decoder", "decoder.onnx"), "x");
    const manifest = {
      format: "rebeca.decoder/v1",
      kind: "single-shot",
      embedding_dim: 8,
      channels: 1,
      height: 2,
      width: 2,
      range: [0, 1],
      files: { decoder: { path: "decoder.onnx", sha256: sha256(new TextEncoder().encode("y")) } },
      io: { decoder: { input: "embedding", output: "image" } },
    };
    await writeFile(join(dir, "decoder", "manifest.json"), JSON.stringify(manifest));
    await expect(loadDecoderModelFiles(join(dir, "decoder", "manifest.json"))).rejects.toThrow(/sha256 mismatch for .*decoder\.onnx/);
  });
});

describe("createUserTable", () => {
  it("places ids around a null row that is not last", () => {
    const t = createUserTable({ data: tableBytes(), rows: ROWS, dim: U, nullRow: 0, ids: "a\nb\nc" });
    expect([t.rowOf("a"), t.rowOf("b"), t.rowOf("c")]).toEqual([1, 2, 3]);
  });
  it("rejects wrong sizes, id counts and duplicate ids", () => {
    expect(() => createUserTable({ data: new Uint8Array(5), rows: ROWS, dim: U, nullRow: 3 })).toThrow(/bytes/);
    expect(() => createUserTable({ data: tableBytes(), rows: ROWS, dim: U, nullRow: 3, ids: "a\nb" })).toThrow(/2 ids/);
    expect(() => createUserTable({ data: tableBytes(), rows: ROWS, dim: U, nullRow: 3, ids: "a\na\nb" })).toThrow(/duplicate/);
    const t = createUserTable({ data: tableBytes(), rows: ROWS, dim: U, nullRow: 3 });
    expect(() => t.row(4)).toThrow(RangeError);
  });
});
