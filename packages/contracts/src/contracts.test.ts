import { describe, expect, it } from "vitest";
import { canTransition, imageSeed, jobOptions, newId } from "./index.js";

describe("lifecycle", () => {
  it("moves forward only, never out of a terminal state, never to the same state", () => {
    expect(canTransition("queued", "sampling")).toBe(true);
    expect(canTransition("queued", "cancelled")).toBe(true);
    expect(canTransition("sampling", "decoding")).toBe(true);
    expect(canTransition("decoding", "succeeded")).toBe(true);
    expect(canTransition("sampling", "sampling")).toBe(false);
    expect(canTransition("decoding", "sampling")).toBe(false);
    expect(canTransition("succeeded", "failed")).toBe(false);
    expect(canTransition("cancelled", "sampling")).toBe(false);
  });
});

describe("ids and seeds", () => {
  it("makes time-sortable ids", () => {
    const a = newId("job", 1_700_000_000_000);
    const b = newId("job", 1_700_000_000_001);
    expect(a).toMatch(/^job_[0-9a-z]{26}$/);
    expect(a < b).toBe(true);
  });
  it("keeps image 0's seed and derives distinct uint32 seeds for the others", () => {
    expect(imageSeed(42, 0)).toBe(42);
    const seeds = Array.from({ length: 1000 }, (_, i) => imageSeed(42, i));
    expect(new Set(seeds).size).toBe(1000);
    expect(seeds.every((s) => Number.isInteger(s) && s >= 0 && s <= 0xffffffff)).toBe(true);
    expect(imageSeed(42, 5)).toBe(imageSeed(42, 5));
  });
});

describe("jobOptions", () => {
  it("prioritizes every job and removes finished ones", () => {
    const o = jobOptions({ jobId: "j", priority: 0 });
    expect(o).toMatchObject({ jobId: "j", priority: 1, attempts: 10 });
    expect(o.removeOnComplete).toBeTruthy();
    expect(o.removeOnFail).toBeTruthy();
  });
});
