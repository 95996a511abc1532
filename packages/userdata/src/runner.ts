import type { EraseUsersTask } from "@rebeca/contracts";
import type { Eraser } from "./eraser.js";
import type { ErasureStore } from "./erasures.js";

/** Thrown when some of a chunk's work was still running: BullMQ retries the erasure with backoff. */
export class ErasureWaitsError extends Error {
  constructor(erasureId: string) {
    super(`erasure ${erasureId} waits for running jobs of its users to stop (they were cancelled)`);
    this.name = "ErasureWaitsError";
  }
}

export interface ErasureRunnerDeps {
  erasures: ErasureStore;
  eraser: Eraser;
  /** Users erased per step (one index lookup, one stream scan). @default 1000 */
  chunkSize?: number;
  now?: () => Date;
  /** Told after each chunk (metrics, BullMQ progress). */
  onChunk?: (erasureId: string, users: number, cursor: number) => void | Promise<void>;
}

/**
 * The `eraseUsers` job: works through the erasure's users from its stored cursor, chunk by chunk,
 * then finishes it. A run killed midway (SIGKILL, a stalled job) resumes at the first chunk it
 * had not recorded; that chunk's steps are idempotent.
 */
export function createErasureRunner(deps: ErasureRunnerDeps) {
  const chunkSize = deps.chunkSize ?? 1000;
  const now = deps.now ?? (() => new Date());
  return async function runErasure(task: EraseUsersTask): Promise<"done" | "skipped"> {
    const record = await deps.erasures.get(task.erasureId);
    if (!record || record.state !== "running" || record.tenant !== task.tenant) return "skipped";
    for (;;) {
      const { cursor, userIds } = await deps.erasures.nextUsers(task.erasureId, chunkSize);
      if (userIds.length === 0) break;
      const outcome = await deps.eraser.eraseUsers(task.tenant, userIds, record.afterErasure, (recalls) => deps.erasures.addRecalls(task.erasureId, recalls));
      const next = outcome.pending ? cursor : cursor + userIds.length;
      await deps.erasures.advance(task.erasureId, outcome.counts, next);
      if (outcome.pending) throw new ErasureWaitsError(task.erasureId);
      await deps.onChunk?.(task.erasureId, userIds.length, next);
    }
    await deps.erasures.finish(task.erasureId, "succeeded", now().toISOString());
    return "done";
  };
}
