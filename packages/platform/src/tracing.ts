/**
 * OpenTelemetry span export (off by default): with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, each service exports its spans over OTLP/HTTP. Spans
 * join the W3C `traceparent` that jobs already carry, so one job's spans form one tree across the
 * gateway, the workers and the notifier. The hooks are small on purpose: `inSpan` around a unit of
 * work, `recordSpan` for a wait that already happened; hand-offs (`nextTraceparent`) then name the
 * active span as the next stage's parent. With tracing off every hook only runs its function.
 */
import { context, ROOT_CONTEXT, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TracerProvider } from "@opentelemetry/sdk-trace";
import { formatTraceparent, parseTraceparent, setHandoff } from "./trace.js";

let tracer: Tracer | undefined;

/** Whether the environment asks for span export (an OTLP endpoint is set and the SDK is not disabled). */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.OTEL_SDK_DISABLED !== "true" && Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Starts exporting this process's spans when the environment asks for it (see
 * `tracingRequested`); `service` is `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
 * `shutdown` flushes what is buffered (call it last in the shutdown).
 */
export function startTracing(service: string, env: NodeJS.ProcessEnv = process.env): { enabled: boolean; shutdown: () => Promise<void> } {
  if (!tracingRequested(env)) return { enabled: false, shutdown: async () => {} };
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME || service }),
    // A sampled caller's trace is kept, an unsampled one is not (the traceparent's flag decides).
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), scheduledDelayMillis: Number(env.OTEL_BSP_SCHEDULE_DELAY) || 5000 })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  tracer = provider.getTracer("rebeca");
  setHandoff(handoff);
  return {
    enabled: true,
    shutdown: async () => {
      setHandoff(undefined);
      tracer = undefined;
      await provider.shutdown();
    },
  };
}

/** The context a span starts in: the job's `traceparent` when given, else the active span's. */
function parentOf(traceparent: string | undefined): Context {
  const t = parseTraceparent(traceparent);
  if (!t) return context.active();
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: t.traceId,
    spanId: t.spanId,
    traceFlags: t.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

/**
 * Runs `fn` inside a span `name`, a child of `traceparent` (a job's) or of the active span; the
 * span records a thrown error. Hand-offs made inside name this span as their parent.
 */
export async function inSpan<T>(name: string, traceparent: string | undefined, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  if (!tracer) return fn();
  const parent = parentOf(traceparent);
  const span = tracer.startSpan(name, { attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), fn);
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

/** A span for a wait that already happened (e.g. time in a queue), from `startMs` to `endMs`. */
export function recordSpan(name: string, traceparent: string | undefined, startMs: number, endMs: number, attributes: Attributes = {}): void {
  if (!tracer) return;
  tracer.startSpan(name, { attributes, startTime: startMs }, parentOf(traceparent)).end(Math.max(startMs, endMs));
}

/**
 * The `traceparent` a hand-off passes on while tracing: the active span's, or, outside any span,
 * that of a short `handoff` span under `incoming`, so every id a stage receives is an exported span.
 */
function handoff(incoming: string | undefined): string | undefined {
  if (!tracer) return undefined;
  let span = trace.getSpan(context.active());
  if (!span) {
    span = tracer.startSpan("handoff", {}, parentOf(incoming));
    span.end();
  }
  const c = span.spanContext();
  return formatTraceparent({ traceId: c.traceId, spanId: c.spanId, sampled: (c.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED });
}
