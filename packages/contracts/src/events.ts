import type { BatchRecord } from "./batches.js";
import type { JobRecord } from "./jobs.js";

/**
 * One entry of a tenant's event stream (`eventId` is the Redis stream id): a job event carries
 * the job, a batch event (`batch.*`) the batch with its counts.
 */
export interface JobEvent {
  eventId: string;
  type: string;
  time: string;
  tenant: string;
  jobId: string;
  batchId: string;
  /** The job's or the batch's state. */
  state: string;
  labels: Record<string, string>;
  job?: JobRecord;
  batch?: BatchRecord;
}
