/*
 * prior-throughput while a model version loads (issue 16): the prior worker's embeddings/s on
 * demo-v1 jobs in rounds, interleaved A/B on one stack — A: nothing else happens; B: as the round
 * starts, a new version (a derived copy of demo-v1, ~11 MB) is published, so the worker's registry
 * watcher fetches and sha256-verifies it, and one job of another tenant names it, so a sampler
 * thread loads it in the middle of the round (the tenants' fair lanes take that job at once).
 * Reports, as medians over pairs, the ratio B/A of whole rounds and of the load's own window (the
 * embeddings B finished while its version loaded against those A finished in the same span after
 * its start; target: no regression, ≈ 1), and the stall: the longest gap between two consecutive
 * demo-v1 jobs finishing, B against A.
 *
 * Each round queues BENCH_JOBS jobs × BENCH_BATCH embeddings with the queue paused, then resumes
 * it; the clock runs from the first job's SAMPLING transition to the last one's DECODING
 * transition (no decoder runs, as in prior-throughput.ts). The gateway and the worker each have
 * their own MODEL_CACHE_DIR.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createJobClient, REPO_ROOT, startStack } from "@rebeca/devstack";
import { stageQueue } from "@rebeca/contracts";
import { JobState } from "@rebeca/contracts/grpc";
import { publishDerivedVersion, publishVersionDir } from "@rebeca/registry";
import { listAllJobs } from "./jobs.js";
import { cpuSeconds } from "./proc.js";
import { registryOf } from "./registry.js";
import { fmt, report } from "./stats.js";

const JOBS = Number(process.env.BENCH_JOBS ?? 300);
const BATCH = Number(process.env.BENCH_BATCH ?? 16);
/** A/B pairs. */
const PAIRS = Number(process.env.BENCH_PAIRS ?? 4);
/** Rounds before the measured ones: a fresh worker speeds up over its first thousands of jobs (JIT, merged sampler calls). */
const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 2);
const users = readFileSync(join(REPO_ROOT, "models/demo-v1/user_ids.txt"), "utf8").split("\n").filter(Boolean);

const caches = await Promise.all([0, 1].map(() => mkdtemp(join(tmpdir(), "bench-load-cache-"))));
const env = (dir: string) => ({ MODEL_CACHE_DIR: dir, REGISTRY_POLL_MS: "1000" });
const stack = await startStack({ services: ["gateway"], tenants: ["bench", "other"], env: { gateway: env(caches[0]!) } });
const bench = createJobClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
const other = createJobClient(stack.grpcAddress, stack.tenants.other!.apiKey);
const redis = new Redis(stack.redis.url);
const registry = registryOf(stack, redis);
const queue = new Queue(stageQueue("prior", "bench", "interactive"), { connection: redis, prefix: stack.prefix });
const drained = async () => {
  for (;;) {
    const counts = await queue.getJobCounts("wait", "prioritized", "active", "delayed");
    if (Object.values(counts).every((n) => n === 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** Publishes `version`, submits a job of tenant other naming it once the gateway has it, and waits until the prior is done with it (seconds). */
async function loadMidRound(version: string): Promise<number> {
  const t0 = performance.now();
  await publishDerivedVersion(registry, "demo-v1", version, new Map(), { actor: "bench", reason: "bench" });
  for (;;) {
    try {
      const { job } = await other.createJob({ requestId: `load-${version}`, userId: users[0]!, modelVersion: version, numImages: BATCH });
      for (;;) {
        const j = (await other.getJob(job!.jobId)).job!;
        if (j.state === JobState.JOB_STATE_DECODING) return (performance.now() - t0) / 1000;
        if (j.state === JobState.JOB_STATE_FAILED) throw new Error(`job on ${version} failed: ${j.error?.message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (err) {
      if ((err as { code?: number }).code !== 9) throw err; // FAILED_PRECONDITION: the gateway has not fetched it yet
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

let round = 0;
interface Round {
  /** Embeddings/s over the whole round. */
  rate: number;
  /** The longest gap between two demo-v1 jobs finishing, ms. */
  stallMs: number;
  /** When the queue was resumed, and when each job reached DECODING (ms since epoch). */
  resumedAt: number;
  ends: number[];
  /** B rounds: from the round's start (ms) the load ran from publish until its job was done. */
  load?: { from: number; to: number };
  /** CPU seconds each process used during the round, per 1000 jobs. */
  cpu: Record<string, number>;
}

/** CPU seconds so far of the processes a round involves (this one publishes and submits). */
function cpuNow(): Record<string, number> {
  const self = process.cpuUsage();
  return {
    worker: cpuSeconds(stack.services["prior-worker"]!.process.child.pid),
    gateway: cpuSeconds(stack.services.gateway!.process.child.pid),
    s3: cpuSeconds(stack.s3.process.child.pid),
    redis: cpuSeconds(stack.redis.process.child.pid),
    bench: (self.user + self.system) / 1e6,
  };
}

/** One round of demo-v1 jobs; with `loading`, a version is published and loaded during it. */
async function runRound(loading: boolean): Promise<Round> {
  const tag = `r${round++}`;
  await queue.pause();
  for (let j = 0; j < JOBS; j++)
    await bench.createJob({ requestId: `${tag}-${j}`, userId: users[j % users.length]!, numImages: BATCH, modelVersion: "demo-v1" });
  const cpu0 = cpuNow();
  await queue.resume();
  const resumedAt = Date.now();
  const load = loading ? loadMidRound(`load-${tag}`).then((s) => ({ from: 0, to: Date.now() - resumedAt, seconds: s })) : Promise.resolve(undefined);
  await drained();
  const loaded = await load;
  const cpu1 = cpuNow();
  const cpu = Object.fromEntries(Object.keys(cpu0).map((k) => [k, ((cpu1[k]! - cpu0[k]!) * 1000) / JOBS]));
  const jobs = (await listAllJobs(bench)).filter((j) => j.requestId.startsWith(`${tag}-`));
  if (jobs.length !== JOBS || jobs.some((j) => j.state !== JobState.JOB_STATE_DECODING)) throw new Error(`round ${tag}: not every job reached DECODING`);
  const starts = jobs.map((j) => Date.parse(j.startTime));
  const ends = jobs.map((j) => Date.parse(j.updateTime)).sort((a, b) => a - b);
  const stallMs = Math.max(...ends.slice(1).map((t, i) => t - ends[i]!));
  const rate = (JOBS * BATCH) / ((ends.at(-1)! - Math.min(...starts)) / 1000);
  return { rate, stallMs, resumedAt, ends, cpu, ...(loaded ? { load: { from: loaded.from, to: loaded.to } } : {}) };
}

/** Embeddings/s of a round's jobs that finished within [from, to) ms of its resume. */
function windowRate(r: Round, w: { from: number; to: number }): number {
  const n = r.ends.filter((t) => t - r.resumedAt >= w.from && t - r.resumedAt < w.to).length;
  return (n * BATCH) / ((w.to - w.from) / 1000);
}

/** The median (the mean of the middle two for an even count). */
function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

try {
  await publishVersionDir(registry, `${REPO_ROOT}models/demo-v1`, { actor: "bench" });
  await stack.start("prior-worker", { ...env(caches[1]!), ORT_INTRA_OP_THREADS: "1", ORT_INTER_OP_THREADS: "1" });
  for (let w = 0; w < WARMUP_ROUNDS; w++) await runRound(false);
  const a: Round[] = [];
  const b: Round[] = [];
  for (let p = 0; p < PAIRS; p++) {
    // Alternate which goes first, so drift of a shared machine's load falls on both.
    if (p % 2 === 0) {
      a.push(await runRound(false));
      b.push(await runRound(true));
    } else {
      b.push(await runRound(true));
      a.push(await runRound(false));
    }
  }
  // Per pair (adjacent rounds, alternating order), so a trend in the machine's load or the worker's
  // warm-up cancels; the median over pairs. Whole rounds, and the load's own window: the jobs B
  // finished while its version loaded against those A finished in the same span after its resume.
  const pairRatios = a.map((r, i) => b[i]!.rate / r.rate);
  const windowRatios = a.map((r, i) => windowRate(b[i]!, b[i]!.load!) / windowRate(r, b[i]!.load!));
  report(
    "prior-throughput while a version loads",
    [
      ...a.map((r, i) => ({
        round: `A${i + 1}: nothing loads`,
        "embeddings/s": fmt(r.rate, 0),
        "in B's load window": fmt(windowRate(r, b[i]!.load!), 0),
        "longest gap, ms": r.stallMs,
        "load, s": "",
      })),
      ...b.map((r, i) => ({
        round: `B${i + 1}: a version published + loaded`,
        "embeddings/s": fmt(r.rate, 0),
        "in B's load window": fmt(windowRate(r, r.load!), 0),
        "longest gap, ms": r.stallMs,
        "load, s": fmt((r.load!.to - r.load!.from) / 1000),
      })),
    ],
    {
      jobs: JOBS,
      batch: BATCH,
      pairs: PAIRS,
      pairRatios: pairRatios.map((x) => Number(fmt(x, 3))),
      ratio: Number(fmt(median(pairRatios), 3)),
      windowRatios: windowRatios.map((x) => Number(fmt(x, 3))),
      windowRatio: Number(fmt(median(windowRatios), 3)),
      stallMsA: median(a.map((r) => r.stallMs)),
      stallMsB: median(b.map((r) => r.stallMs)),
      // What a load costs each process, CPU seconds per round (B − A, median over pairs).
      loadCpuSeconds: Object.fromEntries(
        Object.keys(a[0]!.cpu).map((k) => [k, Number(fmt(median(a.map((r, i) => ((b[i]!.cpu[k]! - r.cpu[k]!) * JOBS) / 1000)), 3))]),
      ),
    },
  );
} finally {
  await queue.close();
  bench.close();
  other.close();
  redis.disconnect();
  await stack.stop();
  for (const d of caches) await rm(d, { recursive: true, force: true });
}
