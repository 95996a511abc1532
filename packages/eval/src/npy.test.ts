import { describe, expect, it } from "vitest";
import { encodeNpy, parseNpy } from "./npy.js";

describe("encodeNpy", () => {
  it("round-trips through parseNpy with its shape, values and a 64-byte aligned header", () => {
    for (const shape of [[3], [2, 1, 2, 3]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, (_, i) => Math.fround(i * 0.37 - 1));
      const bytes = encodeNpy(shape, data);
      expect((bytes.length - 4 * n) % 64).toBe(0);
      const back = parseNpy(bytes);
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.data)).toEqual(Array.from(data));
    }
  });

  it("refuses data that does not fill the shape", () => {
    expect(() => encodeNpy([2, 2], new Float32Array(3))).toThrow(/holds 4 values, data has 3/);
  });
});
