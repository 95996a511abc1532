import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from "prom-client";

export { Registry, Counter, Gauge, Histogram };

/** Latency buckets from 1 ms to ~2 min, for stage and hop durations. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** A registry per service with process metrics and a `service` label on every series. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: "rebeca_" });
  // prom-client exports these gauges with a counter's `_total` suffix, which promtool (rightly)
  // rejects; the process's handle counts are not worth a misleading name.
  for (const name of ["rebeca_nodejs_active_handles_total", "rebeca_nodejs_active_requests_total", "rebeca_nodejs_active_resources_total"])
    registry.removeSingleMetric(name);
  return registry;
}

/**
 * `rebeca_jobs_finished_total{state,model_version}`: jobs this process moved to a terminal state
 * (sum over services for all outcomes: the gateway counts cancels, workers the rest).
 */
export function createJobOutcomeCounter(registry: Registry) {
  const counter = new Counter({
    name: "rebeca_jobs_finished_total",
    help: "Jobs moved to a terminal state by this process, by state and model version",
    labelNames: ["state", "model_version"],
    registers: [registry],
  });
  return (record: { state: string; modelVersion: string }) => counter.inc({ state: record.state, model_version: record.modelVersion });
}
