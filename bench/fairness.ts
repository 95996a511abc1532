/*
 * Fairness: while tenant A's 1,000,000-user batch is pending, tenant B's single jobs complete
 * within 2× their latency on an idle system (target). Latency = the job record's end time minus
 * its create time (server clocks, so polling does not distort it). Baseline in the same run: B's
 * jobs on the idle system, before A submits. Two deployments, each its own stack:
 * - "one pool": one prior and one decoder worker serve both work classes (the default);
 * - "split pools": the recommended production shape — an interactive pool for single jobs and a
 *   batch pool for shards at a lower CPU priority (WORK_CLASSES, PROCESS_NICE=10), on the same
 *   two cores here.
 */
import { chunksOf, createBatchClient, createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { readFileSync } from "node:fs";
import { cpuSeconds } from "./proc.js";
import { fmt, quantile, report } from "./stats.js";

const USERS = Number(process.env.BENCH_USERS ?? 1_000_000);
const PROBES = Number(process.env.BENCH_PROBES ?? 20);
const userIds = readFileSync(new URL("../models/demo-v1/user_ids.txt", import.meta.url), "utf8")
  .split("\n")
  .filter(Boolean);

const TOPOLOGIES: { name: string; start: () => Promise<Stack> }[] = [
  { name: "one pool", start: () => startStack({ tenants: ["tenant-a", "tenant-b"], env: { gateway: { MAX_PRIOR_BACKLOG: "100000000" } } }) },
  {
    name: "split pools",
    async start() {
      const interactive = { WORK_CLASSES: "interactive" };
      const stack = await startStack({
        tenants: ["tenant-a", "tenant-b"],
        env: { gateway: { MAX_PRIOR_BACKLOG: "100000000" }, "prior-worker": interactive, "decoder-worker": interactive },
      });
      for (const name of ["prior-worker", "decoder-worker"] as const) await stack.start(name, { WORK_CLASSES: "batch", PROCESS_NICE: "10" });
      return stack;
    },
  },
];

async function measure(stack: Stack) {
  const a = createBatchClient(stack.grpcAddress, stack.tenants["tenant-a"]!.apiKey);
  const b = createJobClient(stack.grpcAddress, stack.tenants["tenant-b"]!.apiKey);

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
    // Probe once A's work flows through both stages: its first shard has completed.
    const deadline = Date.now() + 300_000;
    while (Number((await a.getBatch(batch.batchId)).counts!.succeeded) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    // The workers that serve A's shards (the batch pool, or the only pool), and the CPU they use
    // while B's probes run: proof that A really competes for the cores meanwhile.
    const aWorkers = [stack.services["prior-worker"]!, stack.services["decoder-worker"]!].map((s) => s.process.child.pid!);
    const cpu0 = aWorkers.reduce((t, pid) => t + cpuSeconds(pid), 0);
    const t0 = performance.now();
    const loaded = await probe("loaded");
    const aCores = (aWorkers.reduce((t, pid) => t + cpuSeconds(pid), 0) - cpu0) / ((performance.now() - t0) / 1000);
    const progress = await a.getBatch(batch.batchId);
    await a.cancelBatch(batch.batchId);
    return { idle, loaded, aDone: Number(progress.counts!.succeeded), aCores };
  } finally {
    a.close();
    b.close();
  }
}

const rows = [];
const ratios: Record<string, number> = {};
for (const topology of TOPOLOGIES) {
  const stack = await topology.start();
  try {
    const { idle, loaded, aDone, aCores } = await measure(stack);
    ratios[topology.name] = quantile(loaded, 0.5) / quantile(idle, 0.5);
    rows.push(
      {
        deployment: topology.name,
        case: "tenant B's job, idle system (baseline)",
        p50_ms: fmt(quantile(idle, 0.5), 0),
        p90_ms: fmt(quantile(idle, 0.9), 0),
        max_ms: fmt(Math.max(...idle), 0),
        ratio_p50: "",
      },
      {
        deployment: topology.name,
        case: `tenant B's job while A's ${USERS}-user batch runs (A's workers busy ${fmt(aCores, 2)} cores meanwhile; ${aDone} users done)`,
        p50_ms: fmt(quantile(loaded, 0.5), 0),
        p90_ms: fmt(quantile(loaded, 0.9), 0),
        max_ms: fmt(Math.max(...loaded), 0),
        ratio_p50: fmt(ratios[topology.name]!),
      },
    );
  } finally {
    await stack.stop();
  }
}
const split = ratios["split pools"]!;
report("fairness", rows, { users: USERS, probes: PROBES, ratio_p50_one_pool: ratios["one pool"], ratio_p50_split_pools: split, pass: split <= 2 });
console.log(`B's p50 while A's batch runs: ${fmt(split)}× idle with split pools, ${fmt(ratios["one pool"]!)}× with one pool; target ≤ 2×`);
