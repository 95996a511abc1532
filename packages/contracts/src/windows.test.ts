import { describe, expect, it } from "vitest";
import { deadlinePassed, delayUntil, outputsExpireTime, parseDurationSeconds, resolveMoment } from "./windows.js";

const submitted = new Date("2026-12-02T18:00:00Z");

describe("windows", () => {
  it("reads durations with one unit, and nothing else", () => {
    expect(parseDurationSeconds("90s")).toBe(90);
    expect(parseDurationSeconds("1.5m")).toBe(90);
    expect(parseDurationSeconds("8h")).toBe(28_800);
    expect(parseDurationSeconds("2d")).toBe(172_800);
    for (const bad of ["", "10", "-5s", "1h30m", "5w", "s", "1e3s"]) expect(parseDurationSeconds(bad), bad).toBeNull();
  });

  it("resolves a moment from an RFC 3339 time or a duration from submission", () => {
    expect(resolveMoment("2026-12-03T06:00:00Z", submitted)?.toISOString()).toBe("2026-12-03T06:00:00.000Z");
    expect(resolveMoment("2026-12-03T07:00:00+01:00", submitted)?.toISOString()).toBe("2026-12-03T06:00:00.000Z");
    expect(resolveMoment("12h", submitted)?.toISOString()).toBe("2026-12-03T06:00:00.000Z");
    // A time without a zone is ambiguous (whose 06:00?): refused, as are dates alone and garbage.
    for (const bad of ["2026-12-03T06:00:00", "2026-12-03", "tomorrow", "2026-13-45T99:00:00Z"]) expect(resolveMoment(bad, submitted), bad).toBeNull();
  });

  it("says a deadline passed from the moment it is reached, and never for work without one", () => {
    const work = { deadline: "2026-12-03T06:00:00.000Z" };
    expect(deadlinePassed(work, Date.parse(work.deadline) - 1)).toBe(false);
    expect(deadlinePassed(work, Date.parse(work.deadline))).toBe(true);
    expect(deadlinePassed({}, Number.MAX_SAFE_INTEGER)).toBe(false);
    expect(deadlinePassed({ deadline: "" }, Number.MAX_SAFE_INTEGER)).toBe(false);
  });

  it("holds work until its start window and not after it", () => {
    const now = submitted.getTime();
    expect(delayUntil("2026-12-02T18:00:05.000Z", now)).toBe(5000);
    expect(delayUntil("2026-12-02T17:00:00.000Z", now)).toBe(0);
    expect(delayUntil(undefined, now)).toBe(0);
  });

  it("dates the outputs' deletion from the end of the work", () => {
    expect(outputsExpireTime("2026-12-02T18:00:00.000Z", 3600)).toBe("2026-12-02T19:00:00.000Z");
    expect(outputsExpireTime("", 3600)).toBe("");
    expect(outputsExpireTime("2026-12-02T18:00:00.000Z", 0)).toBe("");
  });
});
