/**
 * The roles the gateway's two services (JobService, BatchService) depend on. gateway.ts plugs in
 * the Redis and BullMQ adapters; unit tests plug in fakes (testing/fakes.ts). Nothing here does I/O.
 */
import type { Metadata } from "@grpc/grpc-js";
import type { BatchStore, JobStore } from "@rebeca/jobstore";

/** Where new work is enqueued: the job catalog's producer side (payloads parsed on the way in). */
export type { JobSink } from "@rebeca/contracts";

/** Names the caller's tenant from its API key, or throws UNAUTHENTICATED. */
export type Authenticate = (metadata: Metadata) => string;

/** Refuses callback URLs that point into private networks; returns the reason, or null if fine. */
export type CallbackUrlGuard = (url: string) => Promise<string | null>;

/** Why new work is refused, and when to try again. */
export interface Refusal {
  reason: string;
  retryAfterSeconds: number;
}

/** Overload check before anything is written; returns the refusal, or null to go ahead. */
export type AdmissionCheck = (tenant: string) => Promise<Refusal | null>;

/**
 * Takes a job that no worker has started back out of its queue (CancelJob); false if it was not
 * waiting. New work goes in through the job catalog's `JobSink`.
 */
export type Unqueue = (tenant: string, jobId: string) => Promise<boolean>;

/** What JobService does with job records. */
export type JobRecords = Pick<JobStore, "create" | "get" | "list" | "transition">;

/** What BatchService does with batch records. */
export type BatchRecords = Pick<BatchStore, "create" | "get" | "findByRequest" | "addShards" | "shardDone" | "seal" | "list" | "finish">;
