import { randomBytes } from "node:crypto";

/**
 * W3C Trace Context (`traceparent`, what OpenTelemetry propagates): a job carries its trace from
 * the gateway through the prior and decoder stages to its callbacks, each hop a child span, so
 * any OpenTelemetry backend (or a grep of the logs for `traceId`) can follow one job.
 */
export interface TraceContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Parses a `traceparent` header; null when absent or invalid (all-zero ids are invalid). */
export function parseTraceparent(value: string | undefined): TraceContext | null {
  const m = value ? TRACEPARENT.exec(value.trim().toLowerCase()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return null;
  return { traceId: m[1]!, spanId: m[2]!, sampled: (parseInt(m[3]!, 16) & 1) === 1 };
}

export function formatTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.sampled ? "01" : "00"}`;
}

/** A child span of `parent` (same trace, new span id), or a new trace when there is none. */
export function childSpan(parent: TraceContext | null): TraceContext {
  return { traceId: parent?.traceId ?? randomBytes(16).toString("hex"), spanId: randomBytes(8).toString("hex"), sampled: parent?.sampled ?? true };
}

let exported: ((incoming: string | undefined) => string | undefined) | undefined;

/** Installed by `startTracing`: hand-offs then name exported spans (see tracing.ts). */
export function setHandoff(fn: typeof exported): void {
  exported = fn;
}

/** `traceparent` of the next hop after a stage that received `incoming`. */
export function nextTraceparent(incoming: string | undefined): string {
  return exported?.(incoming) ?? formatTraceparent(childSpan(parseTraceparent(incoming)));
}
