import { deadlinePassed, expiredError, type JobRecord } from "@rebeca/contracts";

/** What ending a late job needs from the job store. */
export interface JobExpirer {
  transition(jobId: string, to: "expired", patch: { error: { code: string; message: string } }, known?: JobRecord): Promise<{ applied: boolean }>;
}

/**
 * A stage's check before it starts a job's work: past the job's deadline the job ends EXPIRED
 * (with its event and callback; a job already finished or cancelled stays as it is) and the
 * caller skips it. Returns whether the deadline passed.
 */
export async function expireIfLate(store: JobExpirer, jobId: string, work: { deadline?: string }, known?: JobRecord): Promise<boolean> {
  if (!deadlinePassed(work)) return false;
  await store.transition(jobId, "expired", { error: expiredError(work.deadline!) }, known);
  return true;
}
