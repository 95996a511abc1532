import { describe, expect, it } from "vitest";
import { nextTraceparent, parseTraceparent } from "./trace.js";
import { inSpan, recordSpan, tracingRequested } from "./tracing.js";

describe("tracing (off unless an OTLP endpoint is set)", () => {
  it("is requested only by an OTLP endpoint, and OTEL_SDK_DISABLED wins", () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" })).toBe(false);
  });

  it("when off, hooks only run their function and hand-offs stay children of the incoming trace", async () => {
    const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const next = await inSpan("sampling", incoming, {}, async () => nextTraceparent(incoming));
    const parsed = parseTraceparent(next)!;
    expect(parsed.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(parsed.spanId).not.toBe("00f067aa0ba902b7");
    await expect(inSpan("x", undefined, {}, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(() => recordSpan("queue wait", incoming, 0, 1)).not.toThrow();
  });
});
