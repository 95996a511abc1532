import type { Redis } from "ioredis";
import { createBatchStore } from "./batches.js";
import { createJobStore, type JobStoreOptions } from "./store.js";

/** Both stores on one connection and one set of options (a stage's view of jobs and batches). */
export function createStores(redis: Redis, options: JobStoreOptions) {
  const { onFinished: _, ...batchOptions } = options;
  return { store: createJobStore(redis, options), batches: createBatchStore(redis, batchOptions) };
}
