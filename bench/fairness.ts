/*
 * Fairness: while tenant A's 1,000,000-user batch is pending, tenant B's single jobs complete
 * within 2× their latency on an idle system (target). Latency = the job record's end time minus
 * its create time (server clocks, so polling does not distort it). Baseline in the same run: B's
 * jobs on the idle system, before A submits.
 */
import { chunksOf, createBatchClient, createJobClient, startStack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { fmt, quantile, report } from "./stats.js";

const USERS = Number(process.env.BENCH_USERS ?? 1_000_000);
const PROBES = Number(process.env.BENCH_PROBES ?? 20);

const stack = await startStack({ tenants: ["tenant-a", "tenant-b"], env: { gateway: { MAX_PRIOR_BACKLOG: "100000000" } } });
const a = createBatchClient(stack.grpcAddress, stack.tenants["tenant-a"]!.apiKey);
const b = createJobClient(stack.grpcAddress, stack.tenants["tenant-b"]!.apiKey);
const userIds = (await import("node:fs")).readFileSync(new URL("../models/demo-v1/user_ids.txt", import.meta.url), "utf8").split("\n").filter(Boolean);

/** B's jobs one after another; each latency from its record. */
async function probe(tag: string): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < PROBES; i++) {
    const { job } = await b.createJob({ requestId: `${tag}-${i}`, userId: userIds[i % userIds.length]!, numImages: 1, seed: i });
    for (;;) {
      const current = (await b.getJob(job!.jobId)).job!;
      if (current.state === JobState.JOB_STATE_SUCCEEDED) {
        latencies.push(Date.parse(current.endTime) - Date.parse(current.createTime));
        break;
      }
      if (current.state === JobState.JOB_STATE_FAILED || current.state === JobState.JOB_STATE_CANCELLED) throw new Error(`probe job ended ${current.state}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return latencies;
}

try {
  await probe("warm");
  const idle = await probe("idle");
  const ids = Array.from({ length: USERS }, (_, i) => userIds[i % userIds.length]!);
  const batch = await a.createBatch({ requestId: "big", numImages: 1 }, chunksOf(ids, 10_000));
  // Let A's shards fill the pipeline before B's probes.
  await new Promise((r) => setTimeout(r, 3000));
  const loaded = await probe("loaded");
  const progress = await a.getBatch(batch.batchId);
  await a.cancelBatch(batch.batchId);
  const ratio = quantile(loaded, 0.5) / quantile(idle, 0.5);
  const ratioP90 = quantile(loaded, 0.9) / quantile(idle, 0.9);
  report(
    "fairness",
    [
      { case: "tenant B's job, idle system (baseline)", p50_ms: fmt(quantile(idle, 0.5), 0), p90_ms: fmt(quantile(idle, 0.9), 0), max_ms: fmt(Math.max(...idle), 0) },
      { case: `tenant B's job while A's ${USERS}-user batch runs`, p50_ms: fmt(quantile(loaded, 0.5), 0), p90_ms: fmt(quantile(loaded, 0.9), 0), max_ms: fmt(Math.max(...loaded), 0) },
    ],
    { users: USERS, probes: PROBES, idle_p50_ms: quantile(idle, 0.5), loaded_p50_ms: quantile(loaded, 0.5), ratio_p50: ratio, ratio_p90: ratioP90, a_users_done_meanwhile: Number(progress.counts!.succeeded), pass: ratio <= 2 },
  );
  console.log(`B's p50 ${fmt(ratio)}× idle (p90 ${fmt(ratioP90)}×) while A had ${progress.counts!.total} users pending (${progress.counts!.succeeded} done); target ≤ 2×`);
} finally {
  a.close();
  b.close();
  await stack.stop();
}
