/** Taking waiting work out of a tenant's stage queue (the deadline reaper's BullMQ side). */
import type { JobKind } from "@rebeca/contracts";
import type { QueueCache } from "@rebeca/platform";
import type { UnqueueResult } from "./deadline-reaper.js";

/** BullMQ states of work that has not started: taking it out of the queue loses nothing begun. */
const WAITING = new Set(["waiting", "prioritized", "delayed", "wait", "paused"]);

/**
 * `unqueue(kind, tenant, id)` for the deadline reaper: removes the job `id` from the queue jobs of
 * `kind` for `tenant` go to when it is still waiting there. BullMQ's remove refuses a job whose
 * lock a worker holds, so a worker that took it between the state read and the remove keeps it
 * ("active"); a job already finished or never added there is "absent".
 */
export function createUnqueue(queues: Pick<QueueCache, "queueOf">) {
  return async (kind: JobKind, tenant: string, id: string): Promise<UnqueueResult> => {
    const queue = queues.queueOf(kind, tenant);
    const job = await queue.getJob(id);
    if (!job) return "absent";
    const state = await job.getState();
    if (state === "active") return "active";
    if (!WAITING.has(state)) return "absent";
    return (await queue.remove(id)) === 1 ? "removed" : "active";
  };
}
