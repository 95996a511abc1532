import { Counter, Histogram, DURATION_BUCKETS, type Registry } from "@rebeca/platform";

/** Gateway metrics, Prometheus-named: `rebeca_gateway_*`. */
export function createGatewayMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: "rebeca_gateway_requests_total",
      help: "gRPC requests by method and status code",
      labelNames: ["method", "code"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "rebeca_gateway_request_duration_seconds",
      help: "Unary gRPC request latency",
      labelNames: ["method"],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    jobsCreated: new Counter({
      name: "rebeca_gateway_jobs_created_total",
      help: "Jobs accepted (repeats of a request_id are not counted)",
      registers: [registry],
    }),
  };
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
