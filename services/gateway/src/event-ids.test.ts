import { describe, expect, it } from "vitest";
import { compareEventIds, EVENT_ID } from "./event-ids.js";

describe("compareEventIds", () => {
  it("orders by milliseconds, then sequence, numerically", () => {
    expect(compareEventIds("10-0", "9-5")).toBe(1);
    expect(compareEventIds("1700000000000-2", "1700000000000-10")).toBe(-1);
    expect(compareEventIds("5-1", "5-1")).toBe(0);
    expect(compareEventIds("0", "0-0")).toBe(0);
  });
  it("accepts stream ids and rejects anything else", () => {
    expect(EVENT_ID.test("1700000000000-3")).toBe(true);
    expect(EVENT_ID.test("0")).toBe(true);
    expect(EVENT_ID.test("$")).toBe(false);
    expect(EVENT_ID.test("1-2-3")).toBe(false);
  });
});
