import { describe, expect, it } from "vitest";
import { prepareJob, type JobKind } from "@rebeca/contracts";
import { countShard, createFailureRouter, type ShardOutcome } from "./batch-steps.js";

/** A batch of `shards` shards that counts each once, and a sink that records (parsed) jobs. */
function fakes(shards: number) {
  const counted = new Map<number, ShardOutcome>();
  const added: { kind: JobKind; queue: string; jobId: string | undefined }[] = [];
  const failed: { jobId: string; code: string; message: string }[] = [];
  return {
    counted,
    added,
    failed,
    batches: {
      async shardDone(_batch: { batchId: string; tenant: string }, index: number, n: ShardOutcome) {
        const counts = !counted.has(index);
        if (counts) counted.set(index, n);
        return { counted: counts, last: counted.size === shards };
      },
    },
    sink: {
      async add<K extends JobKind>(kind: K, payload: never) {
        const job = prepareJob(kind, payload);
        added.push({ kind, queue: job.queue, jobId: job.opts.jobId });
      },
    },
    jobs: {
      async failJob(jobId: string, error: { code: string; message: string }) {
        failed.push({ jobId, ...error });
      },
    },
  };
}

describe("countShard", () => {
  it("enqueues the batch's finalize step only when the last shard is counted", async () => {
    const f = fakes(2);
    const deps = { batches: f.batches, jobs: f.sink };
    await countShard(deps, { tenant: "acme", batchId: "b1", shard: 0 }, { succeeded: 2, failed: 0, cancelled: 0 });
    expect(f.added).toEqual([]);
    const res = await countShard(deps, { tenant: "acme", batchId: "b1", shard: 1 }, { succeeded: 1, failed: 1, cancelled: 0 });
    expect(res).toEqual({ counted: true, last: true });
    expect(f.added).toEqual([{ kind: "finalizeBatch", queue: "decode-batch.acme", jobId: "b1-final" }]);
  });
});

describe("createFailureRouter", () => {
  const err = new Error("model exploded");

  it("fails a job's record with the stage's code", async () => {
    const f = fakes(1);
    const route = createFailureRouter({ code: "DECODING_FAILED", jobs: f.jobs, batches: f.batches, sink: f.sink });
    await route({ kind: "decode", data: { jobId: "job_1", tenant: "acme" }, err });
    expect(f.failed).toEqual([{ jobId: "job_1", code: "DECODING_FAILED", message: "model exploded" }]);
    expect(f.counted.size).toBe(0);
  });

  it("counts a failed shard's users as failed and finalizes the batch when it was the last shard", async () => {
    const f = fakes(1);
    const route = createFailureRouter({ code: "SAMPLING_FAILED", jobs: f.jobs, batches: f.batches, sink: f.sink });
    await route({ kind: "sampleShard", data: { tenant: "acme", batchId: "b1", shard: 0, userIds: ["a", "b", "c"] }, err });
    expect(f.counted.get(0)).toEqual({ succeeded: 0, failed: 3, cancelled: 0 });
    expect(f.added.map((a) => a.kind)).toEqual(["finalizeBatch"]);
    expect(f.failed).toEqual([]);
  });

  it("reads a job of no known kind as far as it names a job or shard, and records nothing for one naming neither", async () => {
    const f = fakes(2);
    const route = createFailureRouter({ code: "SAMPLING_FAILED", jobs: f.jobs, batches: f.batches, sink: f.sink });
    await route({ kind: undefined, data: { jobId: "job_2" }, err });
    await route({ kind: undefined, data: { tenant: "acme", batchId: "b1", shard: 1, userIds: ["a"] }, err });
    await route({ kind: undefined, data: "garbage", err });
    await route({ kind: "finalizeBatch", data: { tenant: "acme", batchId: "b1" }, err });
    expect(f.failed.map((x) => x.jobId)).toEqual(["job_2"]);
    expect([...f.counted.keys()]).toEqual([1]);
    expect(f.added).toEqual([]);
  });
});
