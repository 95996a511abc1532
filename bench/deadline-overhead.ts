/*
 * Overhead of deadline checks on batch-e2e's pipeline. One stack runs the same batch (BENCH_USERS
 * users × 1 image, shards of 256, chunks of 16) alternately without a deadline (the baseline) and
 * with one a day ahead (every chunk then checks it and none stops), in the order A B B A, and
 * reports users/s and the prior and decoder workers' CPU per user of each (after one uncounted
 * warm-up batch) (read from /proc). On a
 * shared machine the run-to-run noise of A/B is several percent, so the same run also times the
 * check itself (`deadlinePassed` on a shard's spec) and sets it against the decoder CPU one chunk
 * costs: that ratio is the overhead a chunk pays, with no noise from the machine.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { deadlinePassed } from "@rebeca/contracts";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { chunksOf, createBatchClient, REPO_ROOT, startStack } from "@rebeca/devstack";
import { cpuSeconds } from "./proc.js";
import { fmt, report } from "./stats.js";

const USERS = Number(process.env.BENCH_USERS ?? 3000);
const SHARD = 256;
const CHUNK = 16;
const modelUsers = readFileSync(join(REPO_ROOT, "models", "demo-v1", "user_ids.txt"), "utf8")
  .split("\n")
  .filter(Boolean);
const users = Array.from({ length: USERS }, (_, i) => modelUsers[i % modelUsers.length]!);

// The check as a chunk makes it: a spec with a deadline a day ahead.
const spec = { deadline: new Date(Date.now() + 86_400_000).toISOString() };
const CHECKS = 1_000_000;
let passed = 0;
const c0 = process.cpuUsage();
for (let i = 0; i < CHECKS; i++) if (deadlinePassed(spec)) passed++;
const c1 = process.cpuUsage(c0);
if (passed !== 0) throw new Error("a deadline a day ahead passed");
const checkNs = ((c1.user + c1.system) * 1000) / CHECKS;

const stack = await startStack({
  tenants: ["bench"],
  services: ["gateway", "prior-worker", "decoder-worker"],
  env: { gateway: { SHARD_SIZE: String(SHARD), MAX_PRIOR_BACKLOG: "100000000" }, "decoder-worker": { DECODE_CHUNK_IMAGES: String(CHUNK) } },
});
const client = createBatchClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
const pids = { prior: stack.services["prior-worker"]!.process.child.pid!, decoder: stack.services["decoder-worker"]!.process.child.pid! };
type Run = { label: string; usersPerS: number; priorMs: number; decoderMs: number };
const runs: Run[] = [];
try {
  let n = 0;
  // The first batch warms the workers (model threads, JIT, connections) and is not counted.
  for (const withDeadline of [false, false, true, true, false]) {
    const before = { prior: cpuSeconds(pids.prior), decoder: cpuSeconds(pids.decoder) };
    const t0 = performance.now();
    const batch = await client.createBatch({ requestId: `dl-${n++}`, numImages: 1, ...(withDeadline ? { deadline: "1d" } : {}) }, chunksOf(users, 10_000));
    let done = await client.getBatch(batch.batchId);
    while (!done.endTime) {
      await new Promise((r) => setTimeout(r, 100));
      done = await client.getBatch(batch.batchId);
    }
    const seconds = (performance.now() - t0) / 1000;
    if (done.state !== BatchState.BATCH_STATE_COMPLETED || Number(done.counts!.succeeded) !== USERS)
      throw new Error(`batch ended ${done.state} with ${done.counts!.succeeded} users`);
    if (n === 1) continue;
    runs.push({
      label: withDeadline ? "deadline in 1 d" : "no deadline",
      usersPerS: USERS / seconds,
      priorMs: ((cpuSeconds(pids.prior) - before.prior) * 1000) / USERS,
      decoderMs: ((cpuSeconds(pids.decoder) - before.decoder) * 1000) / USERS,
    });
  }
} finally {
  client.close();
  await stack.stop();
}

const mean = (label: string, key: keyof Omit<Run, "label">) => {
  const rs = runs.filter((r) => r.label === label);
  return rs.reduce((a, r) => a + r[key], 0) / rs.length;
};
const base = { ups: mean("no deadline", "usersPerS"), cpu: mean("no deadline", "priorMs") + mean("no deadline", "decoderMs") };
const withD = { ups: mean("deadline in 1 d", "usersPerS"), cpu: mean("deadline in 1 d", "priorMs") + mean("deadline in 1 d", "decoderMs") };
const baselineRuns = runs.filter((r) => r.label === "no deadline");
const noise = Math.abs(baselineRuns[0]!.usersPerS - baselineRuns[1]!.usersPerS) / base.ups;
// Per chunk: one check in the decoder's loop and one in the prior's (plus one per 250 ms cancel poll).
const chunkDecoderMs = mean("deadline in 1 d", "decoderMs") * CHUNK;
const checkOverhead = (2 * checkNs) / 1e6 / chunkDecoderMs;
report(
  "deadline overhead",
  runs.map((r) => ({ run: r.label, users_per_s: fmt(r.usersPerS, 0), prior_cpu_ms_per_user: fmt(r.priorMs, 3), decoder_cpu_ms_per_user: fmt(r.decoderMs, 3) })),
  {
    users: USERS,
    check_ns: checkNs,
    decoder_cpu_ms_per_chunk: chunkDecoderMs,
    check_overhead_per_chunk: checkOverhead,
    wall_ratio_with_over_without: withD.ups / base.ups,
    cpu_ratio_with_over_without: withD.cpu / base.cpu,
    baseline_run_to_run_noise: noise,
  },
);
console.log(
  `deadline check: ${fmt(checkNs, 0)} ns, ${fmt(checkOverhead * 100, 5)} % of a ${CHUNK}-image chunk's decoder CPU (${fmt(chunkDecoderMs)} ms); ` +
    `A/B on the pipeline: users/s ratio ${fmt(withD.ups / base.ups, 3)}, worker CPU per user ratio ${fmt(withD.cpu / base.cpu, 3)} (baseline runs differ by ${fmt(noise * 100, 1)} %)`,
);
