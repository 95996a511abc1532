import type { Queue } from "bullmq";
import { jobOptions, priorTaskSchema, type PriorTask } from "@rebeca/contracts";
import type { PriorJobSink } from "./service.js";

/** The tenants' "prior" queues as a PriorJobSink: payloads are parsed before `add`; ids are job ids. */
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
