import type { Redis } from "ioredis";
import { outboxFields, redisKeys, webhookBody } from "@rebeca/contracts";
import { Counter, type Logger, type Registry } from "@rebeca/platform";
import type { TrafficPolicy } from "@rebeca/registry";
import type { Verdict } from "./canary-judge.js";

/** The `data` of a `model.rolled_back` callback. */
export interface RolledBackData {
  tenant: string;
  candidate: string;
  stable: string;
  weightBefore: number;
  statistic: "personalization" | "error_rate";
  candidateValue: number;
  stableValue: number;
  noise: number;
  reason: string;
}

/**
 * What happens once the monitor has rolled a canary back: a metric (the RebecaCanaryRolledBack
 * alert fires on it), an error log whose text says what happened, and a signed callback to the
 * tenant's rollback URL through the notifier's outbox (the `model.rolled_back` event itself is
 * recorded by the policy store).
 */
export function createRollbackNotice(o: { redis: Redis; prefix: string; callbacks: Record<string, string>; registry: Registry; log: Logger }) {
  const rollbacks = new Counter({
    name: "rebeca_monitor_canary_rollbacks_total",
    help: "Canaries the monitor rolled back by itself, by tenant, candidate version and the statistic that was worse",
    labelNames: ["tenant", "candidate", "statistic"],
    registers: [o.registry],
  });
  return async (tenant: string, before: TrafficPolicy, v: Extract<Verdict, { rollback: true }>): Promise<void> => {
    rollbacks.inc({ tenant, candidate: before.candidate, statistic: v.statistic });
    o.log.error(
      {
        tenant,
        candidate: before.candidate,
        stable: before.stable,
        statistic: v.statistic,
        candidateValue: v.candidate,
        stableValue: v.stable,
        noise: v.noise,
      },
      `canary rolled back: tenant ${tenant} sends no user to ${before.candidate} any more (was ${before.candidateWeight}%); every user is on ${before.stable}. Why: ${v.reason}`,
    );
    const url = o.callbacks[tenant];
    if (!url) return;
    const time = new Date().toISOString();
    const data: RolledBackData = {
      tenant,
      candidate: before.candidate,
      stable: before.stable,
      weightBefore: before.candidateWeight,
      statistic: v.statistic,
      candidateValue: v.candidate,
      stableValue: v.stable,
      noise: v.noise,
      reason: v.reason,
    };
    await o.redis.xadd(
      redisKeys(o.prefix).outbox(),
      "*",
      ...outboxFields("user", {
        tenant,
        // Stable for this rollback (the webhook-id receivers dedupe on).
        eventId: `model.rolled_back:${before.candidate}:${time}`,
        url,
        type: "model.rolled_back",
        time,
        body: webhookBody("model.rolled_back", time, data),
        traceparent: "",
      }),
    );
  };
}
