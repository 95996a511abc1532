import type { Queue } from "bullmq";
import { jobOptions, priorTaskSchema, type PriorTask } from "@rebeca/contracts";
import type { PriorJobSink } from "./service.js";

/** The "prior" queue as a PriorJobSink: payloads are parsed before `add`, ids are the job ids. */
export function createPriorSink(queue: Queue): PriorJobSink {
  return {
    async add(task: PriorTask) {
      const payload = priorTaskSchema.parse(task);
      await queue.add("sample", payload, jobOptions({ jobId: payload.jobId, priority: payload.priority }));
    },
    async remove(jobId: string) {
      return (await queue.remove(jobId)) === 1;
    },
  };
}
