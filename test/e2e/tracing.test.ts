import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobClient, startStack, startWebhookReceiver, type Stack, type WebhookReceiver } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { startOtlpReceiver, type ReceivedSpan } from "../support/otlp-receiver.js";
import { untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

/*
 * OpenTelemetry export (issue 18): with OTEL_EXPORTER_OTLP_ENDPOINT set, every service exports
 * spans over OTLP/HTTP to a local receiver. One job, created with the caller's traceparent, must
 * give one connected tree across the four processes: the caller's span → gateway → queue wait and
 * sampling (prior worker) → queue wait, decoding and uploads (decoder worker) → callback (notifier).
 */
describe("OpenTelemetry: one job's trace across the services", () => {
  let stack: Stack;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let hooks: WebhookReceiver;
  const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const callerSpan = "00f067aa0ba902b7";

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    hooks = await startWebhookReceiver();
    stack = await startStack({ env: { "*": { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY: "200" } } });
  });
  afterAll(async () => {
    await stack?.stop();
    await hooks?.close();
    await otlp?.close();
  });

  it("exports gateway → prior → decoder → notifier spans of one job as one connected tree", async () => {
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const { job } = await jobs.createJob(
      { requestId: "otel-1", userId: modelUserIds()[0]!, numImages: 2, callbackUrl: hooks.url },
      { traceparent: `00-${callerTrace}-${callerSpan}-01` },
    );
    expect((await untilJobDone(jobs, job!.jobId, 120_000)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    await hooks.until((r) => r.some((w) => w.body.includes("job.succeeded")), 60_000);

    const trace = () => otlp.spans.filter((s) => s.traceId === callerTrace);
    const has = (service: string, name: string) => trace().some((s) => s.service === service && s.name === name);
    for (let t = Date.now(); !(has("notifier", "callback") && has("decoder-worker", "upload")) && Date.now() - t < 30_000;)
      await new Promise((r) => setTimeout(r, 100));
    const spans = trace();
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const one = (service: string, name: string): ReceivedSpan => {
      const found = spans.filter((s) => s.service === service && s.name === name);
      expect(found, `${service} ${name}`).toHaveLength(1);
      return found[0]!;
    };
    const ancestors = (s: ReceivedSpan): ReceivedSpan[] => {
      const out: ReceivedSpan[] = [];
      for (let p = byId.get(s.parentSpanId); p; p = byId.get(p.parentSpanId)) out.push(p);
      return out;
    };

    // One tree: the caller's span (not exported: it is the client's) is the only parent outside it.
    const outside = spans.filter((s) => !byId.has(s.parentSpanId));
    expect(outside.map((s) => [s.service, s.name, s.parentSpanId])).toEqual([["gateway", "gateway CreateJob", callerSpan]]);
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(["gateway", "prior-worker", "decoder-worker", "notifier"]));

    const gateway = one("gateway", "gateway CreateJob");
    const sampling = one("prior-worker", "sampling");
    const decoding = one("decoder-worker", "decoding");
    const callback = one("notifier", "callback");
    expect(sampling.parentSpanId).toBe(gateway.spanId);
    expect(decoding.parentSpanId).toBe(sampling.spanId);
    expect(ancestors(callback)).toContain(gateway);
    const uploads = spans.filter((s) => s.name === "upload");
    expect(uploads.length).toBeGreaterThanOrEqual(2);
    for (const u of uploads) expect(ancestors(u)).toContain(decoding);
    // Time in each queue is a span of its own, under the span that enqueued the job.
    const waits = spans.filter((s) => s.name === "queue wait");
    expect(waits.map((w) => [w.service, byId.get(w.parentSpanId)?.name]).sort()).toEqual(
      [
        ["decoder-worker", "sampling"],
        ["prior-worker", "gateway CreateJob"],
      ].sort(),
    );
    expect(sampling.attributes["rebeca.job.name"]).toBe("sample");
    jobs.close();
  });
});
