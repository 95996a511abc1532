import { describe, expect, it } from "vitest";
import { createShardBuilder } from "./shard-builder.js";
import { ValidationError } from "./validate.js";

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `u${from + i}`);

describe("createShardBuilder", () => {
  it("cuts consecutive positions into fixed shards and flushes the rest at the end", () => {
    const b = createShardBuilder(3, 0, 100);
    expect(b.push(0, ids(0, 2))).toEqual([]);
    expect(b.push(2, ids(2, 5)).map((s) => [s.index, s.firstPosition, s.userIds])).toEqual([
      [0, 0, ["u0", "u1", "u2"]],
      [1, 3, ["u3", "u4", "u5"]],
    ]);
    expect(b.finish().map((s) => [s.index, s.userIds])).toEqual([[2, ["u6"]]]);
    expect(b.stored()).toBe(7);
  });

  it("skips what a resumed stream resends, so shards come out the same", () => {
    // The first stream stored shards up to position 6; the client resends from 4.
    const b = createShardBuilder(3, 6, 100);
    const shards = [...b.push(4, ids(4, 4)), ...b.finish()];
    expect(shards.map((s) => [s.index, s.firstPosition, s.userIds])).toEqual([[2, 6, ["u6", "u7"]]]);
  });

  it("refuses a gap and a batch past its limit", () => {
    const b = createShardBuilder(3, 0, 5);
    expect(() => b.push(2, ids(2, 1))).toThrow(ValidationError);
    expect(() => b.push(0, ids(0, 6))).toThrow(/at most 5 users/);
  });
});
