import { describe, expect, it } from "vitest";
import { createFairLanes } from "./fair-lanes.js";

/** Grants in order: runs each granted request to completion one at a time. */
async function order(lanes: ReturnType<typeof createFairLanes>, requests: [string, number][]) {
  const granted: string[] = [];
  await Promise.all(
    requests.map(async ([tenant, cost]) => {
      const release = await lanes.acquire(tenant, cost);
      granted.push(tenant);
      await Promise.resolve();
      release();
    }),
  );
  return granted;
}

describe("createFairLanes", () => {
  it("lets a newcomer in before a backlogged tenant's queued work", async () => {
    const lanes = createFairLanes({ lanes: 1 });
    const first = await lanes.acquire("a", 10); // a is running
    const granted = order(lanes, [
      ["a", 10],
      ["a", 10],
      ["a", 10],
      ["a", 10],
      ["a", 10],
      ["b", 1],
    ]);
    first();
    // a's requests were queued first, yet b runs right after a's running one.
    expect((await granted)[0]).toBe("b");
  });

  it("bills a charged tenant as if it had asked for the charged work up front", async () => {
    const lanes = createFairLanes({ lanes: 1 });
    const running = await lanes.acquire("x", 1);
    // a's one request carries 4 more units (a batch that grew); b asks for 1 each time.
    const aFirst = lanes.acquire("a", 1);
    lanes.charge("a", 4);
    const granted = order(lanes, [
      ["a", 1],
      ["b", 1],
      ["b", 1],
      ["b", 1],
      ["b", 1],
    ]);
    running();
    (await aFirst)();
    // Without the charge a's second request (start 1) would precede b's second (start 1, later seq).
    expect(await granted).toEqual(["b", "b", "b", "b", "a"]);
  });

  it("shares lanes between backlogged tenants in proportion to weight", async () => {
    const lanes = createFairLanes({ lanes: 1, weight: (t) => (t === "heavy" ? 3 : 1) });
    const requests: [string, number][] = [];
    for (let i = 0; i < 40; i++) requests.push(["heavy", 1], ["light", 1]);
    const granted = await order(lanes, requests);
    const firstForty = granted.slice(0, 40);
    const heavy = firstForty.filter((t) => t === "heavy").length;
    expect(heavy).toBeGreaterThanOrEqual(29);
    expect(heavy).toBeLessThanOrEqual(31);
  });

  it("never runs more than `lanes` at once and releases idempotently", async () => {
    const lanes = createFairLanes({ lanes: 2 });
    const a = await lanes.acquire("x", 1);
    await lanes.acquire("y", 1);
    let third = false;
    const c = lanes.acquire("z", 1).then((r) => ((third = true), r));
    await Promise.resolve();
    expect(third).toBe(false);
    expect(lanes.waiting().get("z")).toBe(1);
    a();
    a();
    (await c)();
    expect(third).toBe(true);
  });

  it("an idle tenant does not bank credit while others work", async () => {
    const lanes = createFairLanes({ lanes: 1 });
    // a works alone for a while, advancing virtual time.
    for (let i = 0; i < 20; i++) (await lanes.acquire("a", 1))();
    const running = await lanes.acquire("a", 1);
    const got: string[] = [];
    const waits = [
      lanes.acquire("b", 1).then((r) => (got.push("b"), r)),
      lanes.acquire("a", 1).then((r) => (got.push("a"), r)),
      lanes.acquire("b", 1).then((r) => (got.push("b"), r)),
      lanes.acquire("a", 1).then((r) => (got.push("a"), r)),
    ];
    running();
    for (const w of waits) (await w)();
    // b joins at the current virtual time: it alternates with a instead of running 20 in a row.
    expect(got).toEqual(["b", "a", "b", "a"]);
  });
});
