import { describe, expect, it } from "vitest";
import { renderGallery } from "./gallery.js";
import { parseNpy } from "@rebeca/eval";
import { oracleLikeProbability } from "@rebeca/eval";

function npy(descr: string, shape: number[], body: Uint8Array): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += " ";
  header += "\n";
  const out = new Uint8Array(10 + header.length + body.length);
  out.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(body, 10 + header.length);
  return out;
}

describe("parseNpy", () => {
  it("reads float32 and uint8 arrays with their shape", () => {
    const f = new Float32Array([1.5, -2, 3.25, 0]);
    expect(parseNpy(npy("<f4", [2, 2], new Uint8Array(f.buffer)))).toEqual({ shape: [2, 2], data: f });
    expect(parseNpy(npy("|u1", [3], new Uint8Array([1, 2, 255])))).toEqual({ shape: [3], data: new Uint8Array([1, 2, 255]) });
  });
  it("refuses other dtypes and non-npy bytes", () => {
    expect(() => parseNpy(npy("<f8", [1], new Uint8Array(8)))).toThrow(/not supported/);
    expect(() => parseNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(/not a .npy/);
  });
});

describe("oracleLikeProbability", () => {
  it("is σ(β(cos − q)): 0.5 at cos = q, higher along the taste, lower against it", () => {
    const user = { id: "u", w: [1, 0], q: 0.5, beta: 10 };
    expect(oracleLikeProbability(user, [Math.cos(Math.PI / 3), Math.sin(Math.PI / 3)])).toBeCloseTo(0.5, 6);
    expect(oracleLikeProbability(user, [2, 0])).toBeCloseTo(1 / (1 + Math.exp(-5)), 6);
    expect(oracleLikeProbability(user, [-1, 0])).toBeLessThan(0.001);
  });
});

describe("renderGallery", () => {
  it("escapes user-provided text", () => {
    const html = renderGallery("t", ["<b>"], [{ userId: "<script>", taste: "x", liked: [], generated: ['a".png'], ownScore: 1, othersScore: 0, jobId: "j" }]);
    expect(html).not.toContain("<script>");
    expect(html).toContain("&#60;script&#62;");
    expect(html).toContain("a&#34;.png");
  });

  it("adds the comparison column only when rows carry it and it is labelled", () => {
    const row = { userId: "u1", taste: "x", liked: ["l.png"], generated: ["g.png"], compared: ["c.png"], ownScore: 1, othersScore: 0, jobId: "j" };
    const both = renderGallery("t", [], [row], { generated: "diffusion", compared: "autoencoder" });
    expect(both).toMatch(/<div class="generated"><h3>diffusion<\/h3><img class="generated" src="g.png"/);
    expect(both).toMatch(/<div class="compared"><h3>autoencoder<\/h3><img class="compared" src="c.png"/);
    expect(renderGallery("t", [], [row])).not.toContain('class="compared"');
  });
});
