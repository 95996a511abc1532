/*
 * Prior worker embeddings/s through the queue vs a bare in-process loop running the same sampler
 * on the same model and batch (target: ratio ≥ 0.85). Both use the model's default sampler (the
 * manifest's `defaults`: a few evaluations per embedding), so the per-job cost of the queue —
 * Redis transitions, the decode hand-off — is what the ratio shows; it is printed per job.
 *
 * Through the queue: BENCH_WARMUP jobs go through one prior worker first (the bare loop warms up
 * too); then the queue is paused, BENCH_JOBS jobs are queued through the gateway, the queue is
 * resumed, and the clock runs from the first measured job's SAMPLING transition to the last one's
 * DECODING transition (Redis transitions, S3 writes of the embeddings and decode hand-offs
 * included). Both sides use one onnxruntime thread.
 *
 * Wall-clock ratios swing with whatever else runs on the machine, so the run also prints what does
 * not: CPU per job by thread (the worker's event loop, its sampler thread, its other threads;
 * Redis) against the bare loop's, Redis commands and socket reads per job, and how many jobs each
 * sampler call merged (from the worker's metrics).
 */
import { join } from "node:path";
import { createOnnxPrior, createOnnxSession, createPriorSampler, loadPriorModelFiles } from "@rebeca/inference";
import { createJobClient, REPO_ROOT, startStack } from "@rebeca/devstack";
import { imageSeed, stageQueue } from "@rebeca/contracts";
import { JobState } from "@rebeca/contracts/grpc";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { listAllJobs } from "./jobs.js";
import { cpuSeconds, splitThreadCpu, threadCpuSeconds } from "./proc.js";
import { sampleValue } from "./prom.js";
import { fmt, report } from "./stats.js";

const JOBS = Number(process.env.BENCH_JOBS ?? 600);
/** Jobs through the worker before the measured ones (0: measure a cold worker). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const BATCH = Number(process.env.BENCH_BATCH ?? 16);
const VERSION = "demo-v1";

/** Embeddings/s of the bare loop, and its CPU ms per job (this process: the same model runs, nothing else). */
async function bare(users: string[]): Promise<{ rate: number; cpuMsPerJob: number }> {
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
  const cpu0 = process.cpuUsage();
  await run(JOBS);
  const cpu = process.cpuUsage(cpu0);
  return { rate: (JOBS * BATCH) / ((performance.now() - t0) / 1000), cpuMsPerJob: (cpu.user + cpu.system) / 1000 / JOBS };
}

/** CPU seconds per job through the queue, by where it was spent (from /proc; 10 ms resolution). */
interface QueueCpu {
  /** The prior worker's event loop: BullMQ, the job store, the hand-off (the per-job queue work). */
  workerMain: number;
  /** The worker's busiest other thread: its sampler thread (messages in and out, the model runs). */
  sampler: number;
  /** The worker's remaining threads: GC helpers, libuv, onnxruntime's. */
  workerRest: number;
  redis: number;
}

/** The prior worker's merged sampler calls, from its /metrics: average jobs and rows per call. */
interface Merging {
  calls: number;
  jobsPerCall: number;
  rowsPerCall: number;
  /** Wall seconds the sampler calls ran (their sum); over the run's wall time: how busy the sampler was kept. */
  busySeconds: number;
}

interface RedisStats {
  /** Commands Redis executed (a Lua script counts once, plus the commands it calls). */
  commands: number;
  /** Socket reads Redis made: about one per client write, so pipelined commands count once. */
  reads: number;
}

/** Calls and microseconds per command name so far (INFO commandstats; scripts' inner calls included). */
async function commandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of (await redis.info("commandstats")).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
    out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

async function redisStats(redis: Redis): Promise<RedisStats> {
  const info = await redis.info("stats");
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1] ?? Number.NaN);
  return { commands: field("total_commands_processed"), reads: field("total_reads_processed") };
}

async function throughQueue(users: string[]): Promise<{
  rate: number;
  /** Share of the measured wall time the sampler thread had a call running (1 = never idle, waiting for the event loop). */
  samplerBusy: number;
  cpu: QueueCpu;
  merging: Merging;
  trips: { commands: number; reads: number; byCommand: string[] };
}> {
  const stack = await startStack({ services: ["gateway"], tenants: ["bench"] });
  const client = createJobClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
  const createJobs = async (prefix: string, n: number, seed0: number) => {
    for (let j = 0; j < n; j++)
      await client.createJob({ requestId: `${prefix}-${j}`, userId: users[(seed0 + j) % users.length]!, numImages: BATCH, seed: seed0 + j });
  };
  try {
    const redis = new Redis(stack.redis.url);
    // No event stream during the run (it would cost the gateway and this process CPU on a 2-core
    // machine); completion is read from the queue, timings from the job records afterwards.
    const priorQueue = new Queue(stageQueue("prior", "bench", "interactive"), { connection: redis, prefix: stack.prefix });
    const drained = async () => {
      for (;;) {
        const counts = await priorQueue.getJobCounts("wait", "prioritized", "active", "delayed");
        if (Object.values(counts).every((n) => n === 0)) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    // Warm-up, as the bare loop has one: the worker's first jobs run in cold (interpreted) code and
    // its background threads are busy compiling, which is start-up, not per-job cost.
    await createJobs("warm", WARMUP, 1_000_000);
    const worker = await stack.start("prior-worker", {
      ORT_INTRA_OP_THREADS: "1",
      ORT_INTER_OP_THREADS: "1",
      ...JSON.parse(process.env.BENCH_WORKER_ENV ?? "{}"),
    });
    await drained();
    // The measured jobs are all queued before the worker may take the first of them.
    await priorQueue.pause();
    await createJobs("tp", JOBS, 0);
    const pids = { worker: worker.process.child.pid, redis: stack.redis.process.child.pid };
    const cpuNow = () => ({ threads: threadCpuSeconds(pids.worker), redis: cpuSeconds(pids.redis) });
    const scrape = async () => await (await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`)).text();
    const metrics0 = await scrape();
    const cpu0 = cpuNow();
    const redis0 = await redisStats(redis);
    const commands0 = await commandStats(redis);
    await priorQueue.resume();
    await drained();
    const cpu1 = cpuNow();
    const redis1 = await redisStats(redis);
    const commands1 = await commandStats(redis);
    const metrics1 = await scrape();
    const delta = (name: string) => sampleValue(metrics1, name) - (sampleValue(metrics0, name) || 0);
    const calls = delta("rebeca_prior_batch_jobs_count");
    const merging = {
      calls,
      jobsPerCall: delta("rebeca_prior_batch_jobs_sum") / calls,
      rowsPerCall: delta("rebeca_prior_batch_rows_sum") / calls,
      busySeconds: delta("rebeca_prior_sampler_busy_seconds_total"),
    };
    await priorQueue.close();
    redis.disconnect();
    const all = await listAllJobs(client);
    const failed = all.filter((j) => j.state !== JobState.JOB_STATE_DECODING);
    if (all.length !== JOBS + WARMUP || failed.length > 0)
      throw new Error(`${failed.length} of ${all.length} jobs did not reach DECODING: ${failed[0]?.error?.message}`);
    const jobs = all.filter((j) => j.requestId.startsWith("tp-"));
    // startTime = the SAMPLING transition; updateTime = the DECODING transition (no decoder runs).
    const t0 = Math.min(...jobs.map((j) => Date.parse(j.startTime)));
    const t1 = Math.max(...jobs.map((j) => Date.parse(j.updateTime)));
    const split = splitThreadCpu(pids.worker, cpu0.threads, cpu1.threads);
    const cpu = {
      workerMain: split.main / JOBS,
      sampler: split.busiest / JOBS,
      workerRest: split.rest / JOBS,
      redis: (cpu1.redis - cpu0.redis) / JOBS,
    };
    // Includes this process's own polls (one job count, a few commands, every 200 ms).
    const perJob = (k: keyof RedisStats) => (redis1[k] - redis0[k]) / JOBS;
    // Where Redis spends its time per job, by command (a script's time includes its inner calls).
    const byCommand = [...commands1]
      .map(([name, c]) => ({ name, calls: (c.calls - (commands0.get(name)?.calls ?? 0)) / JOBS, usec: (c.usec - (commands0.get(name)?.usec ?? 0)) / JOBS }))
      .filter((c) => c.calls > 0)
      .sort((a, b) => b.usec - a.usec)
      .slice(0, 8)
      .map((c) => `${c.name} ${fmt(c.calls, 1)}× ${fmt(c.usec, 0)} µs`);
    const trips = { commands: perJob("commands"), reads: perJob("reads"), byCommand };
    return { rate: (JOBS * BATCH) / ((t1 - t0) / 1000), samplerBusy: merging.busySeconds / ((t1 - t0) / 1000), cpu, merging, trips };
  } finally {
    client.close();
    await stack.stop();
  }
}

const users = (await import("node:fs"))
  .readFileSync(join(REPO_ROOT, "models", VERSION, "user_ids.txt"), "utf8")
  .split("\n")
  .filter(Boolean);
const { rate: base, cpuMsPerJob: bareCpuMs } = await bare(users);
const { rate: queued, samplerBusy, cpu, merging, trips } = await throughQueue(users);
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
    bareCpuMsPerJob: bareCpuMs,
    merging,
    samplerBusy,
    redisPerJob: trips,
    perJobCpuMs: { workerMain: cpu.workerMain * 1000, sampler: cpu.sampler * 1000, workerRest: cpu.workerRest * 1000, redis: cpu.redis * 1000 },
    target: 0.85,
    pass: ratio >= 0.85,
  },
);
console.log(
  `${defaults.sampler}-${defaults.steps} ${defaults.spacing ?? "linspace"} g=${defaults.guidance}: ratio ${fmt(ratio, 3)} (target ≥ 0.85); per job: sampling ${fmt((BATCH / base) * 1000, 2)} ms, queue overhead ${fmt(overheadMs, 2)} ms; CPU per job: bare loop ${fmt(bareCpuMs, 2)} ms; through the queue: worker main thread ${fmt(cpu.workerMain * 1000, 2)} ms, sampler thread ${fmt(cpu.sampler * 1000, 2)} ms, other threads ${fmt(cpu.workerRest * 1000, 2)} ms, Redis ${fmt(cpu.redis * 1000, 2)} ms; ${merging.calls} sampler calls, ${fmt(merging.jobsPerCall, 1)} jobs each, the sampler busy ${fmt(100 * samplerBusy, 0)} % of the time; Redis per job: ${fmt(trips.commands, 1)} commands in ${fmt(trips.reads, 1)} socket reads (${trips.byCommand.join(", ")})`,
);
