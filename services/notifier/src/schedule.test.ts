import { describe, expect, it } from "vitest";
import { classifyStatus, DEFAULT_RETRY_POLICY, MAX_ATTEMPTS, nextRetryDelayMs, parseRetryAfter, RETRY_SCHEDULE_MS, scheduleDelayMs } from "./schedule.js";

const fixed = (v: number) => () => v;

describe("scheduleDelayMs", () => {
  it("follows the spec schedule", () => {
    const exact = { ...DEFAULT_RETRY_POLICY, jitter: 0 };
    expect(Array.from({ length: 9 }, (_, i) => scheduleDelayMs(i + 1, exact))).toEqual([
      5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000,
    ]);
    expect(scheduleDelayMs(10, exact)).toBeNull();
    expect(scheduleDelayMs(0, exact)).toBeNull();
    expect(MAX_ATTEMPTS).toBe(10);
  });

  it("stays within ±jitter, reaching both ends", () => {
    const p = DEFAULT_RETRY_POLICY;
    for (let attempt = 1; attempt <= RETRY_SCHEDULE_MS.length; attempt++) {
      const base = RETRY_SCHEDULE_MS[attempt - 1]!;
      expect(scheduleDelayMs(attempt, p, fixed(0))).toBe(Math.round(base * 0.9));
      expect(scheduleDelayMs(attempt, p, fixed(0.999999))).toBeLessThanOrEqual(Math.round(base * 1.1));
      for (let i = 0; i < 200; i++) {
        const d = scheduleDelayMs(attempt, p)!;
        expect(d).toBeGreaterThanOrEqual(base * 0.9 - 1);
        expect(d).toBeLessThanOrEqual(base * 1.1 + 1);
      }
    }
  });

  it("scales for tests", () => {
    expect(scheduleDelayMs(1, { ...DEFAULT_RETRY_POLICY, scale: 0.001, jitter: 0 })).toBe(5);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");
  it("reads delta seconds", () => expect(parseRetryAfter("120", now)).toBe(120_000));
  it("reads an HTTP date", () => expect(parseRetryAfter("Wed, 01 Jan 2025 00:01:00 GMT", now)).toBe(60_000));
  it("clamps past dates to 0", () => expect(parseRetryAfter("Tue, 31 Dec 2024 00:00:00 GMT", now)).toBe(0));
  it.each([undefined, "", "soon", "-5", "1.5", "12abc"])("ignores %s", (v) => expect(parseRetryAfter(v, now)).toBeNull());
  it("takes the first of repeated headers", () => expect(parseRetryAfter(["3", "9"], now)).toBe(3000));
});

describe("nextRetryDelayMs", () => {
  const p = { ...DEFAULT_RETRY_POLICY, jitter: 0 };
  it("uses the larger of schedule and Retry-After", () => {
    expect(nextRetryDelayMs(1, 60_000, p)).toBe(60_000);
    expect(nextRetryDelayMs(2, 60_000, p)).toBe(300_000);
  });
  it("caps Retry-After", () => {
    expect(nextRetryDelayMs(1, 10 * 86_400_000, p)).toBe(86_400_000);
  });
  it("gives up after the schedule", () => {
    expect(nextRetryDelayMs(10, 1000, p)).toBeNull();
  });
});

describe("classifyStatus", () => {
  it.each([
    [200, "delivered"],
    [204, "delivered"],
    [299, "delivered"],
    [301, "retry"],
    [304, "retry"],
    [400, "retry"],
    [410, "gone"],
    [429, "retry"],
    [500, "retry"],
  ])("%i → %s", (s, v) => expect(classifyStatus(s)).toBe(v));
});
