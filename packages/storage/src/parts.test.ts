import { describe, expect, it } from "vitest";
import { regroup } from "./parts.js";

async function collect(source: Iterable<Uint8Array>, size: number) {
  const out: number[][] = [];
  for await (const p of regroup(source, size)) out.push([...p]);
  return out;
}

describe("regroup", () => {
  it("cuts chunks of any size into full parts and a shorter last one, bytes in order", async () => {
    const chunks = [[1, 2], [3], [], [4, 5, 6, 7, 8, 9, 10], [11]].map((c) => Uint8Array.from(c));
    expect(await collect(chunks, 4)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10, 11],
    ]);
  });
  it("yields nothing for an empty stream and no empty tail after an exact fit", async () => {
    expect(await collect([], 4)).toEqual([]);
    expect(await collect([Uint8Array.from([1, 2, 3, 4])], 4)).toEqual([[1, 2, 3, 4]]);
  });
  it("does not hand out a part it later overwrites", async () => {
    const parts: Uint8Array[] = [];
    for await (const p of regroup([Uint8Array.from([1, 2, 3, 4, 5, 6])], 2)) parts.push(p);
    expect(parts.map((p) => [...p])).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
  });
  it("holds only the bytes that arrived, not a whole part, and copies what the source may reuse", async () => {
    const reused = Uint8Array.from([1, 2, 3]);
    const source = (function* () {
      yield reused;
      reused.fill(9); // the source refills its buffer once the chunk has been read
      yield Uint8Array.from([4]);
    })();
    const parts: Uint8Array[] = [];
    for await (const p of regroup(source, 8 * 1024 * 1024)) parts.push(p);
    expect(parts.map((p) => [...p])).toEqual([[1, 2, 3, 4]]);
    expect(parts[0]!.buffer.byteLength).toBe(4);
  });
  it("rejects a part size that is not a positive integer", async () => {
    await expect(collect([], 0)).rejects.toThrow(RangeError);
  });
});
