/**
 * The roles the gateway's two services (JobService, BatchService) depend on. main.ts plugs in
 * the Redis and BullMQ adapters; unit tests plug in fakes. Nothing here does I/O.
 */
import type { Metadata } from "@grpc/grpc-js";
import type { PriorTask, ShardTask } from "@rebeca/contracts";
import type { BatchStore, JobStore } from "@rebeca/jobstore";

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

/** Where accepted jobs go: the tenant's interactive "prior" queue. */
export interface PriorJobSink {
  /** Enqueues the job under its job id; a repeat of a queued id adds nothing. */
  add(task: PriorTask): Promise<void>;
  /** Removes a job that no worker has taken yet; false if it was not waiting. */
  remove(tenant: string, jobId: string): Promise<boolean>;
}

/** Where a batch's work goes: its shards to the tenant's batch "prior" queue, its finalize step to "decode". */
export interface BatchJobSink {
  /** Enqueues a tenant's shards under their shard ids (repeats add nothing). */
  addShards(tenant: string, tasks: ShardTask[]): Promise<void>;
  /** Enqueues the batch's finalize step (once per batch, whoever asks). */
  finalize(tenant: string, batchId: string): Promise<void>;
}

/** What JobService does with job records. */
export type JobRecords = Pick<JobStore, "create" | "get" | "list" | "transition">;

/** What BatchService does with batch records. */
export type BatchRecords = Pick<BatchStore, "create" | "get" | "findByRequest" | "addShards" | "seal" | "list" | "finish">;
