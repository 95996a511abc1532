import { readFileSync, readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type BatchClient, type JobClient, type Stack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

/** Nice value of every thread of a process (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}

/**
 * Interactive jobs and batch shards are served by separate pools: an interactive-only pool runs
 * jobs and leaves shards alone; a batch pool, started later at a lower CPU priority, runs them.
 */
describe("work classes: separate interactive and batch pools", () => {
  let stack: Stack;
  let jobs: JobClient;
  let batches: BatchClient;
  const users = modelUserIds().slice(0, 12);

  beforeAll(async () => {
    stack = await startStack({
      services: ["gateway", "prior-worker", "decoder-worker"],
      env: { gateway: { SHARD_SIZE: "4" }, "prior-worker": { WORK_CLASSES: "interactive" }, "decoder-worker": { WORK_CLASSES: "interactive" } },
    });
    jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
  });
  afterAll(async () => {
    jobs?.close();
    batches?.close();
    await stack?.stop();
  });

  it("runs jobs on the interactive pool while shards wait for a batch pool, which then runs them at its priority", async () => {
    const batch = await batches.createBatch({ requestId: "classes", numImages: 1 }, chunksOf(users, 12));
    const { job } = await jobs.createJob({ requestId: "classes-job", userId: users[0]!, numImages: 1 });
    expect((await untilJobDone(jobs, job!.jobId)).state).toBe(JobState.JOB_STATE_SUCCEEDED);
    // The job went all the way through while no shard was touched.
    const pending = await batches.getBatch(batch.batchId);
    expect(pending.state).toBe(BatchState.BATCH_STATE_RUNNING);
    expect(Number(pending.counts!.succeeded)).toBe(0);
    expect(Number(pending.counts!.queued)).toBe(users.length);

    const batchPrior = await stack.start("prior-worker", { WORK_CLASSES: "batch", PROCESS_NICE: "9" });
    const batchDecoder = await stack.start("decoder-worker", { WORK_CLASSES: "batch", PROCESS_NICE: "9" });
    const done = await untilBatchCompleted(batches, batch.batchId);
    expect(done.state).toBe(BatchState.BATCH_STATE_COMPLETED);
    expect(Number(done.counts!.succeeded)).toBe(users.length);
    for (const svc of [batchPrior, batchDecoder]) {
      expect(svc.started.classes).toEqual(["batch"]);
      expect(new Set(threadNices(svc.process.child.pid!))).toEqual(new Set([9]));
    }
  });

  it("refuses a worker configured with an unknown work class", async () => {
    await expect(stack.start("prior-worker", { WORK_CLASSES: "overnight" })).rejects.toThrow(/WORK_CLASSES/);
  });
});
