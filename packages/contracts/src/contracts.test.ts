import { describe, expect, it } from "vitest";
import { canTransition, imageSeed, isId, jobOptions, newId, stageQueue } from "./index.js";

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
  it("recognises the shape of its own ids, per prefix", () => {
    const job = newId("job");
    expect(isId("job", job)).toBe(true);
    expect(isId("batch", job)).toBe(false);
    expect(isId("batch", newId("batch"))).toBe(true);
    expect(isId("job", `${job}x`)).toBe(false);
    expect(isId("job", job.toUpperCase())).toBe(false);
    expect(isId("job", "job_")).toBe(false);
    expect(isId("job", `x${job}`)).toBe(false);
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

describe("stageQueue", () => {
  it("keeps interactive and batch work of a tenant in separate queues", () => {
    expect(stageQueue("prior", "acme")).toBe("prior.acme");
    expect(stageQueue("prior", "acme", "batch")).toBe("prior-batch.acme");
    expect(stageQueue("decode", "acme", "batch")).toBe("decode-batch.acme");
  });
  it("never gives two (stage, tenant, class) the same name, whatever the tenant is called", () => {
    const names = new Set<string>();
    for (const tenant of ["a", "a.batch", "batch", "batch.a", "a-batch", "prior-batch"])
      for (const stage of ["prior", "decode"] as const) for (const c of ["interactive", "batch"] as const) names.add(stageQueue(stage, tenant, c));
    expect(names.size).toBe(6 * 2 * 2);
  });
});
