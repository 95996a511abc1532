import { describe, expect, it } from "vitest";
import { checkWindows, tenantOutputTtls } from "./windows.js";
import type { FieldViolation } from "./validate.js";

const now = new Date("2026-12-02T18:00:00Z");
const check = (req: Parameters<typeof checkWindows>[0]) => {
  const v: FieldViolation[] = [];
  const windows = checkWindows(req, now, v, "parameters.");
  return { windows, v };
};

describe("checkWindows", () => {
  it("stores absolute times and seconds", () => {
    expect(check({ startAfter: "1h", deadline: "2026-12-03T06:00:00Z", outputTtl: "30d" })).toEqual({
      windows: { startAfter: "2026-12-02T19:00:00.000Z", deadline: "2026-12-03T06:00:00.000Z", outputTtlSeconds: 2_592_000 },
      v: [],
    });
    expect(check({})).toEqual({ windows: {}, v: [] });
  });

  it("treats a start window already open as no window", () => {
    expect(check({ startAfter: "2026-12-02T17:00:00Z" })).toEqual({ windows: {}, v: [] });
  });

  it.each([
    [{ deadline: "2026-12-02T17:59:59Z" }, "parameters.deadline", /in the past/],
    [{ deadline: "0s" }, "parameters.deadline", /in the past/],
    [{ startAfter: "2h", deadline: "1h" }, "parameters.deadline", /after start_after/],
    [{ startAfter: "1h", deadline: "1h" }, "parameters.deadline", /after start_after/],
    [{ deadline: "soon" }, "parameters.deadline", /RFC 3339/],
    [{ deadline: "2026-12-03T06:00:00" }, "parameters.deadline", /RFC 3339/],
    [{ startAfter: "400d" }, "parameters.start_after", /more than 31 days/],
    [{ deadline: "9999-01-01T00:00:00Z" }, "parameters.deadline", /more than 31 days/],
    [{ outputTtl: "10s" }, "parameters.output_ttl", /between 60 s and 3650 days/],
    [{ outputTtl: "4000d" }, "parameters.output_ttl", /between 60 s and 3650 days/],
    [{ outputTtl: "forever" }, "parameters.output_ttl", /duration/],
    [{ outputTtl: "1".repeat(40) + "s" }, "parameters.output_ttl", /duration/],
  ])("refuses %j with a clear violation", (req, field, description) => {
    const { windows, v } = check(req);
    expect(v).toHaveLength(1);
    expect(v[0]!.field).toBe(field);
    expect(v[0]!.description).toMatch(description);
    expect(windows.deadline).toBeUndefined();
  });
});

describe("tenantOutputTtls", () => {
  it("gives each tenant its own lifetime and the rest the fallback", () => {
    const ttl = tenantOutputTtls(["acme=7d", "globex=1h"], "30d");
    expect([ttl("acme"), ttl("globex"), ttl("initech")]).toEqual([604_800, 3600, 2_592_000]);
    expect(tenantOutputTtls([], "")("acme")).toBe(0);
  });

  it("refuses a bad entry at start", () => {
    expect(() => tenantOutputTtls(["acme"], "")).toThrow(/tenant=duration/);
    expect(() => tenantOutputTtls(["acme=5s"], "")).toThrow(/between 60 s/);
    expect(() => tenantOutputTtls([], "forever")).toThrow(/OUTPUT_TTL/);
  });
});
