import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Queue, Worker, type ConnectionOptions } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startRedis, type RedisServer } from "@rebeca/devstack";
import { registerBacklogMetrics, Registry } from "@rebeca/platform";
import { stageQueue } from "@rebeca/contracts";
import { OVERLAYS, byKind, renderOverlay, tool, type Obj } from "./support.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition -> samples (enough for gauges). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const seriesString = (s: Sample, extra: Record<string, string>) =>
  `${s.name}{${Object.entries({ ...s.labels, ...extra })
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`;

/**
 * Evaluates `query` with promtool against `samples` as Prometheus would store them when scraped
 * from several exporter pods (the gateway, a prior worker, a decoder all export the same counts).
 */
function evaluateWithPromtool(query: string, samples: Sample[], expected: number): { status: number; output: string } {
  const dir = mkdtempSync(join(tmpdir(), "rebeca-keda-"));
  writeFileSync(join(dir, "empty.rules.yaml"), "groups: []\n");
  const inputSeries = ["gateway-0", "gateway-1", "prior-worker-0"].flatMap((pod) =>
    samples.map((s) => ({ series: seriesString(s, { namespace: "rebeca", pod }), values: `${s.value}x5` })),
  );
  // The same queue in another namespace must not count.
  inputSeries.push(...samples.map((s) => ({ series: seriesString(s, { namespace: "staging", pod: "gateway-0" }), values: "1000x5" })));
  writeFileSync(
    join(dir, "keda.test.yaml"),
    stringify({
      rule_files: ["empty.rules.yaml"],
      evaluation_interval: "1m",
      tests: [
        { interval: "1m", input_series: inputSeries, promql_expr_test: [{ expr: query, eval_time: "2m", exp_samples: [{ labels: "{}", value: expected }] }] },
      ],
    }),
  );
  const r = tool("promtool", ["test", "rules", join(dir, "keda.test.yaml")]);
  return { status: r.status, output: r.stdout + r.stderr };
}

describe("backlog metric (the autoscaling signal)", () => {
  let redis: RedisServer;
  let connection: ConnectionOptions;
  const prefix = `{k8s-${randomBytes(3).toString("hex")}}`;
  const queues: Queue[] = [];
  let worker: Worker;
  let release: () => void;
  let samples: Sample[];

  beforeAll(async () => {
    redis = await startRedis();
    connection = { host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: null };
    const prior = new Queue(stageQueue("prior", "acme"), { connection, prefix });
    const decode = new Queue(stageQueue("decode", "acme"), { connection, prefix });
    const priorBatch = new Queue(stageQueue("prior", "acme", "batch"), { connection, prefix });
    const callbacks = new Queue("callbacks", { connection, prefix });
    queues.push(prior, decode, callbacks, priorBatch);

    // One prior job held active by a worker (concurrency 1), then 4 prioritized, 1 plain
    // waiting and 1 delayed behind it.
    const gate = new Promise<void>((resolve) => (release = resolve));
    worker = new Worker(prior.name, () => gate, { connection, prefix, concurrency: 1, autorun: false });
    const active = new Promise<void>((resolve) => worker.once("active", () => resolve()));
    await prior.add("prior", { n: 0 }, { priority: 1 });
    void worker.run();
    await active;
    for (let i = 1; i <= 4; i++) await prior.add("prior", { n: i }, { priority: 1 + i });
    await prior.add("prior", { n: 5 });
    await prior.add("prior", { n: 6 }, { delay: 3_600_000 });
    // Batch shards wait in their own queue: 2 prioritized.
    for (let i = 0; i < 2; i++) await priorBatch.add("shard", { n: i }, { priority: 1 });
    // Decode: 3 prioritized jobs, nobody consuming (decoders scaled to zero).
    for (let i = 0; i < 3; i++) await decode.add("decode", { n: i }, { priority: 1 });
    // Callbacks: 2 sendable now, 5 retries scheduled for later.
    for (let i = 0; i < 2; i++) await callbacks.add("callback", { n: i });
    for (let i = 0; i < 5; i++) await callbacks.add("callback", { n: i }, { delay: 3_600_000 });

    const registry = new Registry();
    registerBacklogMetrics(registry, () => [
      { queue: prior, stage: "prior", tenant: "acme", workClass: "interactive" },
      { queue: priorBatch, stage: "prior", tenant: "acme", workClass: "batch" },
      { queue: decode, stage: "decode", tenant: "acme", workClass: "interactive" },
      { queue: callbacks, stage: "callbacks", tenant: "" },
    ]);
    // Scraped twice: registerBacklogMetrics fills the per-state gauge from the total gauge's
    // collect(), which runs after the per-state gauge was serialised, so per-state values lag
    // one scrape (the first scrape of a process has none). Prometheus scrapes every 15 s.
    await registry.metrics();
    samples = parseExposition(await registry.metrics());
  });

  afterAll(async () => {
    release?.();
    await worker?.close();
    await Promise.all(queues.map((q) => q.close()));
    await redis?.stop();
  });

  const value = (name: string, labels: Record<string, string>) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

  it("counts prioritized and active jobs, which LLEN of the wait list misses", async () => {
    const client = new Redis(redis.url);
    try {
      expect(await client.llen(`${prefix}:${queues[0].name}:wait`)).toBe(1);
    } finally {
      client.disconnect();
    }
    expect(value("rebeca_queue_backlog_jobs", { queue: "prior", tenant: "acme", state: "active" })).toBe(1);
    expect(value("rebeca_queue_backlog_jobs", { queue: "prior", tenant: "acme", state: "prioritized" })).toBe(4);
    expect(value("rebeca_queue_backlog_jobs", { queue: "prior", tenant: "acme", state: "wait" })).toBe(1);
    expect(value("rebeca_queue_backlog_jobs", { queue: "prior", tenant: "acme", state: "delayed" })).toBe(1);
    // The delayed job (a start window not yet open) is shown per state but not counted to scale on.
    expect(value("rebeca_queue_backlog_total_jobs", { queue: "prior", tenant: "acme", class: "interactive" })).toBe(6);
    expect(value("rebeca_queue_backlog_total_jobs", { queue: "prior", tenant: "acme", class: "batch" })).toBe(2);
    expect(value("rebeca_queue_backlog_total_jobs", { queue: "decode", tenant: "acme", class: "interactive" })).toBe(3);
  });

  it("the exposition passes promtool check metrics", () => {
    // Re-serialise only what we parsed is not needed: check the registry text itself.
    const r = tool("promtool", ["check", "metrics"], samplesText(samples));
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  describe.each(OVERLAYS)("the KEDA triggers rendered in %s", (overlay) => {
    const triggerOf = (deployment: string): Obj =>
      byKind(renderOverlay(overlay), "ScaledObject").find((s) => s.spec.scaleTargetRef.name === deployment)!.spec.triggers[0];

    // dev: one pool per stage serves both classes and counts both (6 runnable interactive + 2 batch;
    // the delayed job is held by a start window and scales nothing);
    // prod: the main pool counts interactive work, the batch pool batch work.
    const cases: [string, string, number][] =
      overlay === "dev"
        ? [
            ["rebeca-prior-worker", "prior", 8],
            ["rebeca-decoder-worker", "decode", 3],
          ]
        : [
            ["rebeca-prior-worker", "prior", 6],
            ["rebeca-prior-worker-batch", "prior", 2],
            ["rebeca-decoder-worker", "decode", 3],
            ["rebeca-decoder-worker-batch", "decode", 0],
          ];
    it.each(cases)("%s reads rebeca_queue_backlog_total_jobs{queue=%j}, once per tenant however many pods export it", (deployment, queue, expected) => {
      const { query, activationThreshold } = triggerOf(deployment).metadata;
      expect(query).toContain("rebeca_queue_backlog_total_jobs{");
      expect(query).toContain(`queue="${queue}"`);
      const r = evaluateWithPromtool(query, samples, expected);
      expect(r.status, r.output).toBe(0);
      if (queue === "decode" && expected > 0) expect(expected).toBeGreaterThan(Number(activationThreshold));
    });

    it("rebeca-notifier counts callbacks sendable now, not retries scheduled for later", () => {
      const { query } = triggerOf("rebeca-notifier").metadata;
      const r = evaluateWithPromtool(query, samples, 2);
      expect(r.status, r.output).toBe(0);
    });
  });
});

/** Samples back to exposition text with TYPE lines (gauges), for promtool check metrics. */
function samplesText(samples: Sample[]): string {
  const names = [...new Set(samples.map((s) => s.name))];
  return (
    names
      .map((n) =>
        [`# HELP ${n} backlog`, `# TYPE ${n} gauge`, ...samples.filter((s) => s.name === n).map((s) => `${seriesString(s, {})} ${s.value}`)].join("\n"),
      )
      .join("\n") + "\n"
  );
}
