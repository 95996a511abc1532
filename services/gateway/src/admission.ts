import type { Queue } from "bullmq";
import { BACKLOG_STATES } from "@rebeca/platform";
import type { AdmissionCheck } from "./service.js";

/**
 * Refuses new work while the prior stage's backlog is past `max`. The count is cached for a
 * second so admission costs one Redis round trip per second, not per request.
 */
export function createBacklogAdmission(queue: Queue, max: number, ttlMs = 1000): AdmissionCheck {
  let cached = { at: 0, backlog: 0 };
  return async () => {
    if (Date.now() - cached.at > ttlMs) {
      const counts = await queue.getJobCounts(...BACKLOG_STATES);
      cached = { at: Date.now(), backlog: Object.values(counts).reduce((a, b) => a + b, 0) };
    }
    return cached.backlog >= max ? `prior backlog is ${cached.backlog} jobs (limit ${max}); retry later` : null;
  };
}
