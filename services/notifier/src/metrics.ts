/** Prometheus metrics of the notifier (registered on the service registry). */
import { Counter, DURATION_BUCKETS, Gauge, Histogram, type Registry } from "@rebeca/platform";
import type { DeadLetterStore } from "./dead-letters.js";
import type { DeliveryEvent } from "./delivery.js";

export interface NotifierMetricsSources {
  deadLetters: DeadLetterStore;
  /** Entries still in the outbox (not yet enqueued: they are deleted once enqueued). */
  outboxLength: () => Promise<number>;
  /** Age of the oldest outbox entry in seconds, 0 when empty. */
  outboxOldestAgeSeconds: () => Promise<number>;
}

export function createNotifierMetrics(registry: Registry, sources: NotifierMetricsSources) {
  const deliveries = new Counter({
    name: "rebeca_callback_deliveries_total",
    help: "Callback delivery attempts by outcome (delivered, retry, exhausted, gone, endpoint_disabled, blocked_address, ...)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const duration = new Histogram({
    name: "rebeca_callback_delivery_duration_seconds",
    help: "Time from request start to response headers (or failure) of callback attempts",
    labelNames: ["outcome"],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const dispatched = new Counter({
    name: "rebeca_callback_dispatched_total",
    help: "Outbox entries turned into callback tasks",
    registers: [registry],
  });
  new Gauge({
    name: "rebeca_callback_dead_letters",
    help: "Callbacks waiting in the dead-letter set for an operator",
    registers: [registry],
    async collect() {
      this.set(await sources.deadLetters.count().catch(() => NaN));
    },
  });
  new Gauge({
    name: "rebeca_callback_outbox_lag_entries",
    help: "Outbox entries not yet enqueued for delivery",
    registers: [registry],
    async collect() {
      this.set(await sources.outboxLength().catch(() => NaN));
    },
  });
  new Gauge({
    name: "rebeca_callback_outbox_lag_seconds",
    help: "Age of the oldest outbox entry not yet enqueued for delivery",
    registers: [registry],
    async collect() {
      this.set(await sources.outboxOldestAgeSeconds().catch(() => NaN));
    },
  });
  return {
    onAttempt({ attempt }: DeliveryEvent) {
      deliveries.inc({ outcome: attempt.outcome });
      if (attempt.outcome !== "endpoint_disabled" && attempt.outcome !== "no_signing_secret")
        duration.observe({ outcome: attempt.outcome }, attempt.durationMs / 1000);
    },
    onDispatched(n: number) {
      dispatched.inc(n);
    },
  };
}
