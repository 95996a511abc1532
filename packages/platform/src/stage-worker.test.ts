import { describe, expect, it } from "vitest";
import { handBackAfterMs } from "./stage-worker.js";

describe("handBackAfterMs", () => {
  it("keeps a quarter of the drain deadline, at most 5 s, for the hand-back and the rest of the shutdown", () => {
    expect(handBackAfterMs(4000)).toBe(3000);
    expect(handBackAfterMs(20_000)).toBe(15_000);
    expect(handBackAfterMs(30_000)).toBe(25_000);
    expect(handBackAfterMs(60_000)).toBe(55_000);
    expect(handBackAfterMs(0)).toBe(0);
  });
});
