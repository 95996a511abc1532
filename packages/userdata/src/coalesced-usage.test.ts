import { describe, expect, it } from "vitest";
import { coalesceUsage } from "./coalesced-usage.js";

/** A sink that records its writes, and a timer that fires only when told. */
function setup(fail = false) {
  const writes: { tenant: string; delta: object }[] = [];
  const timers: (() => void)[] = [];
  const usage = coalesceUsage(
    {
      add: async (tenant, delta) => {
        writes.push({ tenant, delta });
        if (fail) throw new Error("redis down");
      },
    },
    { windowMs: 100, setTimeout: (fn) => timers.push(fn), clearTimeout: () => timers.splice(0) },
  );
  return { writes, timers, usage };
}

describe("coalesceUsage", () => {
  it("sums one tenant's deltas within the window into one write per tenant, when the window ends", async () => {
    const { writes, timers, usage } = setup();
    const done = [
      usage.add("acme", { images: 1, embeddings: 1, bytesStored: 300 }),
      usage.add("acme", { decoderSeconds: 0.25 }),
      usage.add("globex", { images: 2 }),
      usage.add("acme", { images: 1, embeddings: 1, bytesStored: 310, decoderSeconds: 0.5 }),
    ];
    expect(writes).toHaveLength(0);
    expect(timers).toHaveLength(1); // one window, however many deltas
    timers.shift()!();
    await Promise.all(done);
    expect(writes).toEqual([
      { tenant: "acme", delta: { images: 2, embeddings: 2, bytesStored: 610, decoderSeconds: 0.75 } },
      { tenant: "globex", delta: { images: 2 } },
    ]);
    // The next delta opens a new window.
    const later = usage.add("acme", { images: 1 });
    expect(timers).toHaveLength(1);
    timers.shift()!();
    await later;
    expect(writes.at(-1)).toEqual({ tenant: "acme", delta: { images: 1 } });
  });

  it("writes what is pending on flush (shutdown), without waiting for the window", async () => {
    const { writes, timers, usage } = setup();
    const p = usage.add("acme", { images: 3 });
    await usage.flush();
    await p;
    expect(writes).toEqual([{ tenant: "acme", delta: { images: 3 } }]);
    expect(timers).toHaveLength(0);
    await usage.flush(); // nothing pending: no write
    expect(writes).toHaveLength(1);
  });

  it("rejects every delta of a failed write, so its recorder logs it", async () => {
    const { timers, usage } = setup(true);
    const a = usage.add("acme", { images: 1 });
    const b = usage.add("acme", { decoderSeconds: 1 });
    timers.shift()!();
    await expect(a).rejects.toThrow("redis down");
    await expect(b).rejects.toThrow("redis down");
  });
});
