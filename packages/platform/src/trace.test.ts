import { describe, expect, it } from "vitest";
import { childSpan, formatTraceparent, nextTraceparent, parseTraceparent } from "./trace.js";

describe("trace context", () => {
  const header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  it("parses and formats a W3C traceparent", () => {
    const t = parseTraceparent(header)!;
    expect(t).toEqual({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", sampled: true });
    expect(formatTraceparent(t)).toBe(header);
  });
  it.each([
    undefined,
    "",
    "junk",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
  ])("refuses %j", (v) => {
    expect(parseTraceparent(v)).toBeNull();
  });
  it("keeps the trace and changes the span at each hop; starts a trace when there is none", () => {
    const next = parseTraceparent(nextTraceparent(header))!;
    expect(next.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(next.spanId).not.toBe("00f067aa0ba902b7");
    expect(childSpan(null).traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});
