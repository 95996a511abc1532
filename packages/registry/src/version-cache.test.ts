import { describe, expect, it } from "vitest";
import { createVersionCache } from "./version-cache.js";

describe("createVersionCache", () => {
  it("keeps at most `max` versions, releasing the least recently used idle one, and reloads a released one on use", async () => {
    const loads: string[] = [];
    const released: string[] = [];
    const cache = createVersionCache({ max: 2, load: async (v) => (loads.push(v), `model-${v}`), release: (v) => void released.push(v) });
    expect(await cache.use("a", async (m) => m)).toBe("model-a");
    await cache.use("b", async () => 0);
    await cache.use("a", async () => 0); // a is now the most recent
    await cache.use("c", async () => 0);
    await Promise.resolve();
    expect(released).toEqual(["b"]);
    expect(cache.loaded()).toEqual(["a", "c"]);
    await cache.use("b", async () => 0);
    expect(loads).toEqual(["a", "b", "c", "b"]);
  });

  it("never releases a version while a run uses it, and shares one load between concurrent first uses", async () => {
    const released: string[] = [];
    let loads = 0;
    const cache = createVersionCache({ max: 1, load: async (v) => (loads++, v), release: (v) => void released.push(v) });
    let finish!: () => void;
    const long = cache.use("a", () => new Promise<void>((r) => (finish = r)));
    let during: string[] = [];
    await Promise.all([cache.use("b", async () => void (during = cache.loaded())), cache.use("b", async () => 0)]);
    expect(during).toEqual(["a", "b"]); // over the bound while a is busy
    await Promise.resolve();
    expect(released).toEqual(["b"]); // then the idle one leaves, not the busy a
    finish();
    await long;
    expect(cache.loaded()).toEqual(["a"]);
    expect(loads).toBe(2);
  });

  it("a failed load is not kept: the next use tries again", async () => {
    let attempt = 0;
    const cache = createVersionCache({ max: 2, load: async () => (++attempt === 1 ? Promise.reject(new Error("S3 down")) : "ok") });
    await expect(cache.use("a", async (m) => m)).rejects.toThrow("S3 down");
    expect(await cache.use("a", async (m) => m)).toBe("ok");
  });

  it("pinned versions are never released and do not count against the bound", async () => {
    const released: string[] = [];
    const cache = createVersionCache({ max: 1, pinned: new Set(["embedded"]), load: async (v) => v, release: (v) => void released.push(v) });
    await cache.use("embedded", async () => 0);
    await cache.use("x", async () => 0);
    await cache.use("y", async () => 0);
    await Promise.resolve();
    expect(released).toEqual(["x"]);
    expect(cache.loaded()).toEqual(["embedded", "y"]);
  });
});
