/*
 * Prior worker embeddings/s through the queue vs a bare in-process loop running the same sampler
 * on the same model and batch (target: ratio ≥ 0.85). Both use the model's default sampler (the
 * manifest's `defaults`: a few evaluations per embedding), so the per-job cost of the queue —
 * Redis transitions, the decode hand-off — is what the ratio shows; it is printed per job.
 *
 * Through the queue: jobs are queued through the gateway while no prior worker runs; then one
 * prior worker starts and the clock runs from its first SAMPLING transition to its last DECODING
 * transition (Redis transitions, S3 writes of the embeddings and decode hand-offs included).
 * Both sides use one onnxruntime thread.
 */
import { join } from "node:path";
import { createOnnxPrior, createOnnxSession, createPriorSampler, loadPriorModelFiles } from "@rebeca/inference";
import { createJobClient, REPO_ROOT, startStack } from "@rebeca/devstack";
import { imageSeed } from "@rebeca/contracts";
import { JobState } from "@rebeca/contracts/grpc";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { listAllJobs } from "./jobs.js";
import { fmt, report } from "./stats.js";

const JOBS = Number(process.env.BENCH_JOBS ?? 200);
const BATCH = Number(process.env.BENCH_BATCH ?? 16);
const VERSION = "demo-v1";

async function bare(users: string[]): Promise<number> {
  const files = await loadPriorModelFiles(join(REPO_ROOT, "models", VERSION, "manifest.json"));
  const { session } = await createOnnxSession(files.prior.bytes, { providers: ["cpu"], intraOpThreads: 1, interOpThreads: 1 });
  const sampler = createPriorSampler({
    model: createOnnxPrior(session, { embeddingDim: files.manifest.embedding_dim, userDim: files.manifest.user_dim }),
    userTable: files.userTable,
    manifest: files.manifest,
  });
  const run = async (n: number) => {
    for (let j = 0; j < n; j++) {
      const seeds = Array.from({ length: BATCH }, (_, i) => imageSeed(j, i));
      await sampler.sample({ userRow: files.userTable.rowOf(users[j % users.length]!)!, seeds });
    }
  };
  await run(5); // warm-up
  const t0 = performance.now();
  await run(JOBS);
  return (JOBS * BATCH) / ((performance.now() - t0) / 1000);
}

async function throughQueue(users: string[]): Promise<number> {
  const stack = await startStack({ services: ["gateway"], tenants: ["bench"] });
  const client = createJobClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
  try {
    for (let j = 0; j < JOBS; j++) {
      await client.createJob({ requestId: `tp-${j}`, userId: users[j % users.length]!, numImages: BATCH, seed: j });
    }
    // No event stream during the run (it would cost the gateway and this process CPU on a 2-core
    // machine); completion is read from the queue, timings from the job records afterwards.
    const redis = new Redis(stack.redis.url);
    const priorQueue = new Queue("prior.bench", { connection: redis, prefix: stack.prefix });
    await stack.start("prior-worker", { ORT_INTRA_OP_THREADS: "1", ORT_INTER_OP_THREADS: "1", ...JSON.parse(process.env.BENCH_WORKER_ENV ?? "{}") });
    for (;;) {
      const counts = await priorQueue.getJobCounts("wait", "prioritized", "active", "delayed");
      if (Object.values(counts).every((n) => n === 0)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await priorQueue.close();
    redis.disconnect();
    const jobs = await listAllJobs(client);
    const failed = jobs.filter((j) => j.state !== JobState.JOB_STATE_DECODING);
    if (jobs.length !== JOBS || failed.length > 0)
      throw new Error(`${failed.length} of ${jobs.length} jobs did not reach DECODING: ${failed[0]?.error?.message}`);
    // startTime = the SAMPLING transition; updateTime = the DECODING transition (no decoder runs).
    const t0 = Math.min(...jobs.map((j) => Date.parse(j.startTime)));
    const t1 = Math.max(...jobs.map((j) => Date.parse(j.updateTime)));
    return (JOBS * BATCH) / ((t1 - t0) / 1000);
  } finally {
    client.close();
    await stack.stop();
  }
}

const users = (await import("node:fs"))
  .readFileSync(join(REPO_ROOT, "models", VERSION, "user_ids.txt"), "utf8")
  .split("\n")
  .filter(Boolean);
const base = await bare(users);
const queued = await throughQueue(users);
const ratio = queued / base;
const { defaults } = JSON.parse((await import("node:fs")).readFileSync(join(REPO_ROOT, "models", VERSION, "manifest.json"), "utf8")) as {
  defaults: { sampler: string; steps: number; spacing?: string; guidance: number };
};
// Wall time a job spends beyond its sampling: what the queue adds per job at this batch size.
const overheadMs = (BATCH / queued - BATCH / base) * 1000;
report(
  "prior throughput",
  [
    { path: "bare in-process loop (baseline)", "embeddings/s": fmt(base, 0) },
    { path: "through BullMQ (gateway → prior worker → S3 + decode queue)", "embeddings/s": fmt(queued, 0) },
  ],
  {
    jobs: JOBS,
    batch: BATCH,
    defaults,
    baseline: base,
    measured: queued,
    ratio,
    perJobOverheadMs: overheadMs,
    perJobSampleMs: (BATCH / base) * 1000,
    target: 0.85,
    pass: ratio >= 0.85,
  },
);
console.log(
  `${defaults.sampler}-${defaults.steps} ${defaults.spacing ?? "linspace"} g=${defaults.guidance}: ratio ${fmt(ratio, 3)} (target ≥ 0.85); per job: sampling ${fmt((BATCH / base) * 1000, 2)} ms, queue overhead ${fmt(overheadMs, 2)} ms`,
);
