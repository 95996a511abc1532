import { describe, expect, it } from "vitest";
import { planPrune } from "./cache-pruner.js";

const e = (version: string, bytes: number, usedAt: number) => ({ version, bytes, usedAt });

describe("planPrune", () => {
  it("deletes least recently used versions until the rest fit, skipping protected ones", () => {
    const entries = [e("c", 30, 3), e("a", 30, 1), e("b", 30, 2), e("d", 30, 4)];
    expect(planPrune(entries, new Set(), 60)).toEqual(["a", "b"]);
    expect(planPrune(entries, new Set(["a"]), 60)).toEqual(["b", "c"]);
    expect(planPrune(entries, new Set(), 120)).toEqual([]);
  });

  it("stays over the bound rather than delete a protected version", () => {
    const entries = [e("a", 50, 1), e("b", 50, 2), e("c", 50, 3)];
    expect(planPrune(entries, new Set(["a", "b", "c"]), 10)).toEqual([]);
    expect(planPrune(entries, new Set(["a", "c"]), 10)).toEqual(["b"]);
  });
});
