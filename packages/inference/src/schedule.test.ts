import { describe, expect, it } from "vitest";
import { cosineAlphasCumprod, timesteps, validateAlphasCumprod } from "./schedule.js";

describe("cosineAlphasCumprod", () => {
  const a = cosineAlphasCumprod(1000);
  it("has T values, strictly decreasing in (0, 1)", () => {
    expect(a.length).toBe(1000);
    expect(validateAlphasCumprod(a, 1000)).toEqual([]);
    expect(a[0]).toBeGreaterThan(0.9999);
  });
  it("keeps ᾱ_999 ≈ 2.4e-9, strictly positive thanks to the β cap", () => {
    expect(a[999]).toBeGreaterThan(0);
    expect(a[999]).toBeCloseTo(2.4287669e-9, 15);
    expect(a[999]! / a[998]!).toBeCloseTo(0.001, 12);
  });
});

describe("validateAlphasCumprod", () => {
  it("reports wrong length, non-monotone and out-of-range values", () => {
    expect(validateAlphasCumprod([0.9, 0.5], 3)[0]).toMatch(/2 values, expected 3/);
    expect(validateAlphasCumprod([0.9, 0.95, 0.1], 3)[0]).toMatch(/not strictly decreasing at index 1/);
    expect(validateAlphasCumprod([0.9, 0.5, 0], 3)[0]).toMatch(/outside/);
  });
});

describe("timesteps", () => {
  it("spaces S steps over T with integer floor, highest first, ending at 0", () => {
    expect(Array.from(timesteps(1000, 1))).toEqual([999]);
    expect(Array.from(timesteps(1000, 2))).toEqual([999, 0]);
    expect(Array.from(timesteps(10, 4))).toEqual([9, 6, 3, 0]);
    expect(Array.from(timesteps(1000, 3))).toEqual([999, 499, 0]);
    const t50 = timesteps(1000, 50);
    expect(t50.length).toBe(50);
    expect(Array.from(t50.subarray(0, 4))).toEqual([999, 978, 958, 937]);
    for (let i = 0; i < 50; i++) expect(t50[i]).toBe(Math.floor((999 * (49 - i)) / 49));
  });
  it("visits every timestep when S = T", () => {
    const t = timesteps(1000, 1000);
    for (let i = 0; i < 1000; i++) expect(t[i]).toBe(999 - i);
  });
  it("trailing starts at T−1 and spends no step at t = 0; leading ends at 0 and starts below T−1", () => {
    expect(Array.from(timesteps(1000, 3, "trailing"))).toEqual([999, 666, 333]);
    expect(Array.from(timesteps(1000, 4, "trailing"))).toEqual([999, 749, 499, 249]);
    expect(Array.from(timesteps(1000, 1, "trailing"))).toEqual([999]);
    expect(Array.from(timesteps(1000, 3, "leading"))).toEqual([666, 333, 0]);
    expect(Array.from(timesteps(10, 4, "leading"))).toEqual([7, 5, 2, 0]);
    for (const spacing of ["leading", "trailing", "linspace"] as const) {
      const t = timesteps(1000, 1000, spacing);
      for (let i = 0; i < 1000; i++) expect(t[i], spacing).toBe(999 - i);
    }
  });
  it("rejects an unknown spacing", () => {
    expect(() => timesteps(1000, 3, "cosine" as never)).toThrow(/unknown timestep spacing cosine/);
  });
  it("rejects S outside 1..T", () => {
    expect(() => timesteps(1000, 0)).toThrow(RangeError);
    expect(() => timesteps(1000, 1001)).toThrow(RangeError);
  });
});
