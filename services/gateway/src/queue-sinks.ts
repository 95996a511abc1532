import type { Queue } from "bullmq";
import { finalizeJobId, finalizeTaskSchema, jobOptions, priorTaskSchema, shardJobId, shardTaskSchema, type PriorTask, type ShardTask } from "@rebeca/contracts";
import type { BatchJobSink, PriorJobSink } from "./ports.js";

/** The tenants' interactive "prior" queues as a PriorJobSink: payloads are parsed before `add`; ids are job ids. */
export function createPriorSink(queueOf: (tenant: string) => Queue): PriorJobSink {
  return {
    async add(task: PriorTask) {
      const payload = priorTaskSchema.parse(task);
      await queueOf(payload.tenant).add("sample", payload, jobOptions({ jobId: payload.jobId, priority: payload.priority }));
    },
    async remove(tenant: string, jobId: string) {
      return (await queueOf(tenant).remove(jobId)) === 1;
    },
  };
}

/** Shard jobs are added in bulk, at most this many per `addBulk` (BullMQ users report trouble beyond ~1k). */
const ADD_BULK = 1000;

/**
 * The tenants' batch-class queues as a BatchJobSink: shards to "prior", the finalize step to
 * "decode". Payloads are parsed before they are added; job ids are derived from the batch, so a
 * repeat adds nothing.
 */
export function createBatchSink(queues: { priorOf: (tenant: string) => Queue; decodeOf: (tenant: string) => Queue }): BatchJobSink {
  return {
    async addShards(tenant: string, tasks: ShardTask[]) {
      const queue = queues.priorOf(tenant);
      for (let i = 0; i < tasks.length; i += ADD_BULK) {
        await queue.addBulk(
          tasks.slice(i, i + ADD_BULK).map((task) => {
            const t = shardTaskSchema.parse(task);
            return { name: "shard", data: t, opts: jobOptions({ jobId: shardJobId(t.batchId, t.shard), priority: t.spec.priority }) };
          }),
        );
      }
    },
    async finalize(tenant: string, batchId: string) {
      const payload = finalizeTaskSchema.parse({ tenant, batchId });
      await queues.decodeOf(tenant).add("finalize", payload, jobOptions({ jobId: finalizeJobId(batchId) }));
    },
  };
}
