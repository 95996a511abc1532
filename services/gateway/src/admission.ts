import type { Queue } from "bullmq";
import { backlogOf } from "@rebeca/platform";
import type { AdmissionCheck } from "./service.js";

/**
 * Refuses a tenant's new work while its prior backlog is past `max`. Counts are cached per tenant
 * for `ttlMs`, so admission costs one Redis round trip per tenant per second, not per request.
 */
export function createBacklogAdmission(queueOf: (tenant: string) => Queue, max: number, ttlMs = 1000): AdmissionCheck {
  const cached = new Map<string, { at: number; backlog: number }>();
  return async (tenant) => {
    let entry = cached.get(tenant);
    if (!entry || Date.now() - entry.at > ttlMs) {
      entry = { at: Date.now(), backlog: (await backlogOf(queueOf(tenant))).total };
      cached.set(tenant, entry);
    }
    return entry.backlog >= max ? `tenant backlog is ${entry.backlog} jobs (limit ${max}); retry later` : null;
  };
}
