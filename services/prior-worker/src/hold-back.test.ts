import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createDecodeHoldBack } from "./hold-back.js";

describe("createDecodeHoldBack", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("holds a tenant's shards while its decode backlog is past the limit, with one backlog read per poll for all of them", async () => {
    const backlogs = [100, 100, 10];
    const reads: string[] = [];
    const holdBack = createDecodeHoldBack(async (tenant) => (reads.push(tenant), backlogs[Math.min(reads.length - 1, backlogs.length - 1)]!), 64, 200);
    const released: number[] = [];
    const waits = Array.from({ length: 10 }, (_, i) => holdBack("acme").then(() => released.push(i)));
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    expect(released).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    await Promise.all(waits);
    expect(released).toHaveLength(10);
    expect(reads).toEqual(["acme", "acme", "acme"]); // three polls, not thirty
  });

  it("gives up holding after maxWaitMs, and does not reuse a failed read", async () => {
    let fail = true;
    let reads = 0;
    const holdBack = createDecodeHoldBack(
      async () => {
        reads++;
        if (fail) throw new Error("redis down");
        return 1000;
      },
      64,
      200,
      1000,
    );
    await expect(holdBack("acme")).rejects.toThrow("redis down");
    fail = false;
    expect(reads).toBe(1);
    let done = false;
    const held = holdBack("acme").then(() => (done = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    expect(reads).toBe(6); // read again at once (the failure was not kept), then every 200 ms
    await vi.advanceTimersByTimeAsync(201);
    await held; // still past the limit, but released by the bound
    expect(done).toBe(true);
  });
});
