/*
 * Compile-time checks of the catalog's types, run by the build (`tsc -b`), never imported: if a
 * stage's handler map stopped being checked against the catalog, the build fails here.
 */
import type { JobKindOf } from "@rebeca/contracts";
import type { StageHandlers } from "./stage-worker.js";

export const priorKinds: JobKindOf<"prior">[] = ["sample", "sampleShard"];
export const decodeKinds: JobKindOf<"decode">[] = ["decode", "decodeShard", "finalizeBatch"];
// @ts-expect-error a decode kind is not a prior kind
export const notPrior: JobKindOf<"prior"> = "decode";
// @ts-expect-error every kind of the stage needs a handler
export const missingHandler: StageHandlers<"prior"> = { sample: async () => "done" };
export const allHandlers: StageHandlers<"prior"> = {
  sample: async (task) => (task.jobId ? "done" : "skipped"),
  sampleShard: async (task) => (task.batchId ? "done" : "skipped"),
};
// @ts-expect-error a handler gets its own kind's payload
export const wrongPayload: StageHandlers<"prior"> = { sample: async (task) => (task.batchId ? "done" : "skipped"), sampleShard: async () => "done" };
