import { describe, expect, it } from "vitest";
import { floorSlope, slope, windowFloors } from "./trend.js";

/** Samples every 2 s for 10 minutes of a GC sawtooth (20 MB teeth, 1.5-minute period) on `base(t)`. */
function sawtooth(base: (t: number) => number): { xs: number[]; ys: number[] } {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let t = 0; t <= 10; t += 2 / 60) {
    xs.push(t);
    ys.push(base(t) + 20 * ((t % 1.5) / 1.5));
  }
  return { xs, ys };
}

describe("memory trend estimates", () => {
  it("slope fits a line", () => {
    expect(slope([0, 1, 2, 3], [5, 7, 9, 11])).toBeCloseTo(2, 10);
    expect(slope([1, 1], [3, 4])).toBe(0);
  });

  it("windowFloors takes each window's lowest sample at its own x", () => {
    expect(windowFloors([0, 1, 2, 3, 4, 5], [9, 4, 7, 8, 2, 6], 3)).toEqual({ x: [1, 4], y: [4, 2] });
  });

  it("floorSlope reads a steady sawtooth as flat, where a plain regression over a window ending high on a tooth reads growth", () => {
    const { xs, ys } = sawtooth(() => 160);
    const end = xs.findIndex((t) => t > 1.45); // one minute and a bit: ends at a tooth's top
    expect(slope(xs.slice(0, end), ys.slice(0, end))).toBeGreaterThan(5);
    expect(Math.abs(floorSlope(xs, ys))).toBeLessThan(0.5);
  });

  it("floorSlope finds a slow steady leak under the sawtooth", () => {
    const { xs, ys } = sawtooth((t) => 160 + 1.2 * t);
    expect(floorSlope(xs, ys)).toBeCloseTo(1.2, 0);
  });

  it("floorSlope counts a heap still growing to its steady size, so soaks sample after settling", () => {
    const { xs, ys } = sawtooth((t) => (t < 3 ? 155 + (22 * t) / 3 : 177));
    expect(floorSlope(xs, ys)).toBeGreaterThan(2);
  });
});
