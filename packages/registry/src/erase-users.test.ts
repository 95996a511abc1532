import { describe, expect, it } from "vitest";
import { blankUsers } from "./erase-users.js";

/** A 4-row table of dim 2 (row r holds r+1, r+1) whose null row is 2: ids name rows 0, 1 and 3. */
const m = { user_dim: 2, users: { rows: 4, null_row: 2 } };
const table = new Uint8Array(Float32Array.from([1, 1, 2, 2, 3, 3, 4, 4]).buffer);
const rows = (bytes: Uint8Array) => [...new Float32Array(new Uint8Array(bytes).buffer)];

describe("blanking erased users in a user table", () => {
  it("zeroes exactly the erased users' rows, skipping the null row, and replaces their ids in place", () => {
    const out = blankUsers(m, "a\nb\nc\n", table, new Set(["c", "a"]))!;
    expect(out.blanked).toBe(2);
    // "c" is the third id: row 3, after the null row.
    expect(rows(out.table)).toEqual([0, 0, 2, 2, 3, 3, 0, 0]);
    expect(out.ids).toBe("~erased-0\nb\n~erased-3\n");
    expect(rows(table)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]); // the input is not changed
  });

  it("answers null when none of the users is in the table (nothing to rewrite: erasure is idempotent)", () => {
    expect(blankUsers(m, "a\nb\nc\n", table, new Set(["zz"]))).toBeNull();
    const once = blankUsers(m, "a\nb\nc\n", table, new Set(["b"]))!;
    expect(blankUsers(m, once.ids, once.table, new Set(["b"]))).toBeNull();
  });

  it("reads ids written with CRLF line ends", () => {
    expect(rows(blankUsers(m, "a\r\nb\r\nc\r\n", table, new Set(["b"]))!.table)).toEqual([1, 1, 0, 0, 3, 3, 4, 4]);
  });
});
