import { describe, expect, it } from "vitest";
import { mergeByPosition } from "./merge-by-position.js";

const enc = (positions: number[]) => new TextEncoder().encode(positions.map((p) => JSON.stringify({ user_id: `u${p}`, position: p })).join("\n") + "\n");
const positions = (bytes: Uint8Array) =>
  new TextDecoder()
    .decode(bytes)
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { position: number }).position);

describe("mergeByPosition", () => {
  it("interleaves a block's stable and candidate result lines back into position order, line for line", () => {
    const out = mergeByPosition(enc([0, 1, 3, 4, 7]), enc([2, 5, 6]));
    expect(positions(out)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(new TextDecoder().decode(out).endsWith("}\n")).toBe(true);
  });

  it("passes one side through when the other shard has no result (all users on one version, or never ran)", () => {
    const a = enc([0, 1]);
    expect(mergeByPosition(a, new Uint8Array(0))).toBe(a);
    expect(mergeByPosition(new Uint8Array(0), a)).toBe(a);
  });
});
