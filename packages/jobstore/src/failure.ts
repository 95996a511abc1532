import type { JobStore } from "./store.js";

/**
 * Records that a stage gave up on a job (retries exhausted or unrecoverable), so clients see
 * FAILED with a code instead of a job stuck in its last state. Payloads too broken to name a job
 * have nothing to record.
 */
export async function markFailed(store: JobStore, data: unknown, code: string, err: Error): Promise<void> {
  const jobId = (data as { jobId?: unknown } | null)?.jobId;
  if (typeof jobId !== "string" || !(await store.get(jobId))) return;
  await store.transition(jobId, "failed", { error: { code, message: err.message.slice(0, 500) } });
}
