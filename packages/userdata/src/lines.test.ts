import { describe, expect, it } from "vitest";
import { eraseShardLines, streamWithoutUsers, zeroRows } from "./lines.js";
import { parseBatchOutputRef, batchOutputRef } from "./keys.js";
import { daysBetween } from "./usage.js";

const img = (n: number) => Array.from({ length: n }, (_, i) => ({ uri: `s3://b/${i}.png`, sha256: "0".repeat(64), bytes: 1, width: 1, height: 1, seed: i }));
const shard = [
  { user_id: "ann", position: 0, images: img(2) },
  { user_id: "bob", position: 1, error: { code: "UNKNOWN_USER", message: "x" } },
  { user_id: "cat", position: 2, images: img(2) },
  { user_id: "dan", position: 3, images: img(2) },
]
  .map((l) => JSON.stringify(l))
  .join("\n");

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  let out = "";
  for await (const c of chunks) out += Buffer.from(c).toString("utf8");
  return out;
}
async function* pieces(text: string, size: number) {
  for (let i = 0; i < text.length; i += size) yield Buffer.from(text.slice(i, i + size));
}

describe("eraseShardLines", () => {
  it("replaces the users' lines with markers and finds their embedding rows (failed users have none)", () => {
    const out = eraseShardLines(shard, new Set(["cat"]));
    expect(out).toMatchObject({ removed: 1, ranges: [[2, 4]], rows: 6 });
    expect(out.text).not.toContain("cat");
    expect(out.text).toContain('{"position":2,"erased":true,"rows":2}');
  });

  it("still finds a later user's rows after an earlier erasure rewrote the lines", () => {
    const first = eraseShardLines(shard, new Set(["ann"]));
    const second = eraseShardLines(first.text, new Set(["dan"]));
    expect(second).toMatchObject({ removed: 1, ranges: [[4, 6]], rows: 6 });
    expect(eraseShardLines(second.text, new Set(["dan"])).removed).toBe(0);
  });
});

describe("zeroRows", () => {
  it("zeroes only the given rows and counts only rows that held anything", () => {
    const v = Float32Array.from([1, 1, 2, 2, 3, 3]);
    expect(zeroRows(v, 3, [[1, 2]])).toBe(1);
    expect([...v]).toEqual([1, 1, 0, 0, 3, 3]);
    expect(zeroRows(v, 3, [[1, 2]])).toBe(0);
    expect(() => zeroRows(Float32Array.from([1, 2, 3]), 2, [])).toThrow(RangeError);
  });
});

describe("streamWithoutUsers", () => {
  it("drops the users' lines and erased markers across chunk boundaries, counting user lines only", async () => {
    const manifest = shard + "\n" + JSON.stringify({ position: 9, erased: true, rows: 2 }) + "\n";
    let removed = 0;
    const out = await collect(streamWithoutUsers(pieces(manifest, 7), new Set(["ann", "dan"]), () => removed++));
    expect(removed).toBe(2);
    expect(
      out
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l).user_id),
    ).toEqual(["bob", "cat"]);
  });
});

describe("index entries and usage days", () => {
  it("round-trips a batch output reference and refuses a malformed one", () => {
    expect(parseBatchOutputRef(batchOutputRef({ batchId: "batch_x", position: 12, shard: 3 }))).toEqual({ batchId: "batch_x", position: 12, shard: 3 });
    expect(() => parseBatchOutputRef("batch_x/12")).toThrow(/malformed/);
  });
  it("lists days inclusive and refuses reversed or bad ranges", () => {
    expect(daysBetween("2026-02-27", "2026-03-01")).toEqual(["2026-02-27", "2026-02-28", "2026-03-01"]);
    expect(() => daysBetween("2026-03-02", "2026-03-01")).toThrow(/after/);
    expect(() => daysBetween("2026-3-1", "2026-03-01")).toThrow(/YYYY/);
  });
});
