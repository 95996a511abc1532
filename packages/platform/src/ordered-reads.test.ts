import { describe, expect, it } from "vitest";
import { inOrder } from "./ordered-reads.js";

/** A read whose completion the test controls, to finish reads out of order. */
function controlledReads() {
  const pending = new Map<number, { resolve: (v: string) => void; reject: (e: Error) => void }>();
  const started: number[] = [];
  const read = (i: number) =>
    new Promise<string>((resolve, reject) => {
      started.push(i);
      pending.set(i, { resolve, reject });
    });
  return { read, started, pending };
}

describe("inOrder", () => {
  it("yields in index order although reads finish out of order, with at most `ahead` in flight", async () => {
    const { read, started, pending } = controlledReads();
    const stream = inOrder(5, 2, read);
    const first = stream.next();
    expect(started).toEqual([0, 1]);
    pending.get(1)!.resolve("b");
    pending.get(0)!.resolve("a");
    expect((await first).value).toBe("a");
    expect(started).toEqual([0, 1, 2]); // one slot freed, one more read started
    const rest: string[] = [];
    const drain = (async () => {
      for (let r = await stream.next(); !r.done; r = await stream.next()) rest.push(r.value);
    })();
    for (const i of [4, 3, 2]) {
      await new Promise((r) => setImmediate(r));
      pending.get(i)?.resolve(String.fromCharCode(97 + i));
    }
    await new Promise((r) => setImmediate(r));
    for (const i of [2, 3, 4]) pending.get(i)!.resolve(String.fromCharCode(97 + i));
    await drain;
    expect(rest).toEqual(["b", "c", "d", "e"]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it("fails the stream with the first failing read in order, without an unhandled rejection", async () => {
    const stream = inOrder(3, 3, async (i) => {
      if (i === 2) throw new Error("read 2 failed");
      return i;
    });
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const v of stream) seen.push(v);
      })(),
    ).rejects.toThrow("read 2 failed");
    expect(seen).toEqual([0, 1]);
  });

  it("yields nothing for zero reads", async () => {
    const seen: unknown[] = [];
    for await (const v of inOrder(0, 4, async () => 1)) seen.push(v);
    expect(seen).toEqual([]);
  });
});
