import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { crc32, encodePng, imageAt, toByte } from "./png.js";

describe("crc32", () => {
  it("matches the standard check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });
});

describe("toByte", () => {
  it("clamps and rounds half up", () => {
    expect([-1, 0, 0.5, 1, 2, Number.NaN, 1 / 510, 0.999].map(toByte)).toEqual([0, 0, 128, 255, 255, 0, 1, 255]);
  });
});

describe("encodePng", () => {
  const decode = (bytes: Uint8Array) => PNG.sync.read(Buffer.from(bytes));

  it("grayscale round trip through pngjs is exact", () => {
    const H = 5;
    const W = 7;
    const pixels = new Float32Array(H * W);
    for (let i = 0; i < pixels.length; i++) pixels[i] = ((i * 13) % 41) / 37 - 0.05; // some out of range
    const png = decode(encodePng({ pixels, channels: 1, height: H, width: W }));
    expect([png.width, png.height]).toEqual([W, H]);
    for (let i = 0; i < H * W; i++) {
      const v = toByte(pixels[i]!);
      expect([png.data[i * 4], png.data[i * 4 + 1], png.data[i * 4 + 2], png.data[i * 4 + 3]]).toEqual([v, v, v, 255]);
    }
  });

  it("RGB round trip from planar [3, H, W] is exact", () => {
    const H = 3;
    const W = 4;
    const pixels = new Float32Array(3 * H * W);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i % 17) / 16;
    const png = decode(encodePng({ pixels, channels: 3, height: H, width: W }));
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        for (let c = 0; c < 3; c++) {
          expect(png.data[(y * W + x) * 4 + c]).toBe(toByte(pixels[c * H * W + y * W + x]!));
        }
  });

  it("is deterministic", () => {
    const pixels = Float32Array.from({ length: 28 * 28 }, (_, i) => (i % 29) / 28);
    const a = encodePng({ pixels, channels: 1, height: 28, width: 28 });
    const b = encodePng({ pixels: pixels.slice(), channels: 1, height: 28, width: 28 });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it("imageAt views one item of a batch", () => {
    const batch = { pixels: Float32Array.from({ length: 2 * 4 }, (_, i) => i / 8), channels: 1, height: 2, width: 2 };
    expect(Array.from(imageAt(batch, 1).pixels)).toEqual([0.5, 0.625, 0.75, 0.875]);
  });

  it("rejects unsupported shapes", () => {
    expect(() => encodePng({ pixels: new Float32Array(8), channels: 2, height: 2, width: 2 })).toThrow(/1 or 3/);
    expect(() => encodePng({ pixels: new Float32Array(3), channels: 1, height: 2, width: 2 })).toThrow(/expected/);
  });
});
