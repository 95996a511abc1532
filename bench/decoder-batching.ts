/*
 * Decoder-worker throughput with micro-batching vs a bare in-process decode loop at the same batch
 * size (target: ratio ≥ 0.9), and the gain of batch 8 over batch 1 in the bare loop.
 *
 * Model: the latent-diffusion bench model (bench/models/latent-bench: the IP-Adapter-shaped tiny
 * UNet at a 32×32 latent (128×128 images), PNDM 50 steps = 51 UNet calls, guidance 5, CPU, one onnxruntime thread),
 * or with BENCH_MODEL_VERSION=demo-v2 the committed trained decoder of that version (served from
 * models/ as the demo serves it, at its manifest's scheduler and steps unless BENCH_STEPS is set).
 *
 * Through the worker: single-image jobs go through the gateway and the prior while no decoder runs;
 * then one decoder worker (DECODE_MAX_BATCH 8) starts and drains them. The clock runs from its first
 * finished batch to its last SUCCEEDED transition (steady state, start-up excluded), so Redis
 * transitions, PNG encoding and S3 writes count.
 * Concurrent single jobs only share a decoder call through the micro-batcher.
 *
 * The baseline is taken in turns with the worker: the worker runs for PHASE_MS, is frozen with its
 * S3 server and Redis (SIGSTOP: every thread stops where it is), the bare loop runs for PHASE_MS,
 * they resume (SIGCONT), and so on until the queue is drained. The host's
 * speed on these shared VMs swings by 20 % within a minute (the same loop: 14.7–21.4 ms an image),
 * so a baseline measured before or after the worker ran judged the worker by another minute's
 * machine; in turns, both see the same minutes.
 */
import { join } from "node:path";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { loadLatentDecoder, type LatentImageDecoder } from "@rebeca/inference";
import { assembleLatentModelsDir, createJobClient, REPO_ROOT, startStack } from "@rebeca/devstack";
import { imageSeed } from "@rebeca/contracts";
import { JobState } from "@rebeca/contracts/grpc";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { listAllJobs } from "./jobs.js";
import { cpuSeconds, splitThreadCpu, threadCpuSeconds } from "./proc.js";
import { fmt, report } from "./stats.js";

const TRAINED = process.env.BENCH_MODEL_VERSION;
/**
 * Jobs through the worker. The trained decoder decodes about 8 ms an image on one core, so 128 jobs
 * drained in about 1 s, most of it the worker's and s3rver's JIT warm-up (CPU per image 18.6 ms
 * over 128 jobs, 13.3 over 1024); 1024 gives about 8 s of steady state, as the bench model's 128 do.
 */
const JOBS = Number(process.env.BENCH_JOBS ?? (TRAINED ? 1024 : 128));
const BATCH = Number(process.env.BENCH_BATCH ?? 8);
const MODEL = TRAINED ? join(REPO_ROOT, "models", TRAINED, "decoder") : join(REPO_ROOT, "bench", "models", "latent-bench");
const VERSION = TRAINED ?? "latent-v1";
/** undefined: the manifest's own steps (trained model). */
const STEPS = process.env.BENCH_STEPS ? Number(process.env.BENCH_STEPS) : TRAINED ? undefined : 50;
const log = (msg: string) => console.log(`[decoder-batching] ${msg}`);

/** Bare-loop rounds of 2·BATCH images at batch 1 and at BATCH, for the batching gain. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
/** Length of each worker turn and each bare-loop turn. */
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 1000);

/**
 * Per thread of a process: seconds on a CPU and seconds runnable but waiting for one (Linux
 * schedstat), so a thread's idle time (nothing to run) can be told apart from CPU contention.
 */
function schedSeconds(pid: number | undefined): Map<number, { run: number; wait: number }> {
  const out = new Map<number, { run: number; wait: number }>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number);
      out.set(Number(tid), { run: run! / 1e9, wait: wait! / 1e9 });
    }
  } catch {
    // no /proc or no schedstat: no figures
  }
  return out;
}

/**
 * The bare in-process loop on `decoder`: `ROUNDS` rounds that each decode the same 2·BATCH images
 * at batch 1 and at batch BATCH, alternating, so that load drifting on a shared machine hits both
 * alike. Returns images/s per batch size.
 */
async function bare(decoder: LatentImageDecoder): Promise<{ one: number; batched: number; cpuPerImage: number }> {
  const E = decoder.config.embeddingDim;
  const images = 2 * BATCH;
  const run = async (batch: number) => {
    const t0 = performance.now();
    for (let j = 0; j < images; j += batch) {
      const e = Float32Array.from({ length: batch * E }, (_, k) => Math.sin(j * E + k));
      await decoder.decode(
        e,
        batch,
        Array.from({ length: batch }, (_, i) => imageSeed(j, i)),
      );
    }
    return performance.now() - t0;
  };
  await run(BATCH); // warm-up: onnxruntime's first runs allocate and pick kernels
  await run(1);
  let t1 = 0;
  let tb = 0;
  let cpuB = 0;
  for (let r = 0; r < ROUNDS; r++) {
    t1 += await run(1);
    const c0 = process.cpuUsage();
    tb += await run(BATCH);
    const c = process.cpuUsage(c0);
    cpuB += (c.user + c.system) / 1e6;
  }
  return { one: (ROUNDS * images) / (t1 / 1000), batched: (ROUNDS * images) / (tb / 1000), cpuPerImage: cpuB / (ROUNDS * images) };
}

/** The bare loop at batch BATCH for at least `ms`: images decoded and the time they took. */
async function bareTurn(decoder: LatentImageDecoder, ms: number): Promise<{ images: number; ms: number }> {
  const E = decoder.config.embeddingDim;
  const t0 = performance.now();
  let images = 0;
  while (performance.now() - t0 < ms) {
    const e = Float32Array.from({ length: BATCH * E }, (_, k) => Math.sin(images * E + k));
    await decoder.decode(
      e,
      BATCH,
      Array.from({ length: BATCH }, (_, i) => imageSeed(images, i)),
    );
    images += BATCH;
  }
  return { images, ms: performance.now() - t0 };
}

async function throughWorker(
  users: string[],
  decoder: LatentImageDecoder,
): Promise<{
  bareTurns: { images: number; ms: number; turns: number };
  imagesPerS: number;
  avgBatch: number;
  cpuPerImage: Record<string, number>;
  threadsPerImage: ReturnType<typeof splitThreadCpu>;
  decoderShares: { run: number; wait: number };
}> {
  // the trained version is served from models/ itself; the bench model is paired with demo-v1's prior
  const modelsDir = TRAINED ? undefined : assembleLatentModelsDir(MODEL, VERSION);
  const stack = await startStack({
    ...(modelsDir ? { modelsDir } : {}),
    services: ["gateway", "prior-worker"],
    tenants: ["bench"],
    env: { "*": { DEFAULT_MODEL_VERSION: VERSION } },
  });
  const client = createJobClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
  const redis = new Redis(stack.redis.url);
  try {
    for (let j = 0; j < JOBS; j++) {
      await client.createJob({ requestId: `db-${j}`, userId: users[j % users.length]!, numImages: 1, seed: j, modelVersion: VERSION });
    }
    const isEmpty = async (queue: Queue) => Object.values(await queue.getJobCounts("wait", "prioritized", "active", "delayed")).every((n) => n === 0);
    const drained = async (queue: Queue) => {
      while (!(await isEmpty(queue))) await new Promise((r) => setTimeout(r, 100));
    };
    const priorQueue = new Queue("prior.bench", { connection: redis, prefix: stack.prefix });
    await drained(priorQueue);
    await priorQueue.close();
    const t0 = Date.now();
    const worker = await stack.start("decoder-worker", {
      ORT_INTRA_OP_THREADS: "1",
      ORT_INTER_OP_THREADS: "1",
      ...(STEPS ? { LATENT_STEPS: String(STEPS) } : {}),
      DECODE_MAX_BATCH: String(BATCH),
      DECODE_MAX_WAIT_MS: "5",
      CONCURRENCY: String(2 * BATCH),
      ...JSON.parse(process.env.BENCH_WORKER_ENV ?? "{}"),
    });
    // CPU used while draining, per process that works for the decode stage (the gateway and the
    // prior worker are idle by now): a load-independent view of what a job costs besides the model.
    const pids = { "decoder-worker": worker.process.child.pid, s3rver: stack.s3.process.child.pid, redis: stack.redis.process.child.pid };
    const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
    const threads0 = threadCpuSeconds(pids["decoder-worker"]);
    const sched0 = schedSeconds(pids["decoder-worker"]);
    const wall0 = performance.now();
    const decodeQueue = new Queue("decode.bench", { connection: redis, prefix: stack.prefix });
    const decoded = async () => {
      const text = await (await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`)).text();
      return Number(/^rebeca_decoder_images_total(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? 0);
    };
    // Turns begin once its first batch is out (start-up is not the worker's steady state).
    const deadline = Date.now() + 120_000;
    while ((await decoded()) < BATCH) {
      if (Date.now() > deadline) throw new Error("the decoder worker finished no batch in 2 minutes");
      await new Promise((r) => setTimeout(r, 20));
    }
    const frozen: [number, number][] = [];
    const bareTurns = { images: 0, ms: 0, turns: 0 };
    // The worker and the servers it talks to freeze together (and thaw in reverse order), so that
    // no work of the worker's is done while the bare loop runs: S3 and Redis would otherwise
    // finish the worker's requests in flight on the bare loop's time.
    const pipeline = [pids["decoder-worker"]!, pids.s3rver!, pids.redis!];
    for (;;) {
      const turnEnd = Date.now() + PHASE_MS;
      while (Date.now() < turnEnd && !(await isEmpty(decodeQueue))) await new Promise((r) => setTimeout(r, 50));
      if (Date.now() < turnEnd) break;
      const from = Date.now();
      for (const pid of pipeline) process.kill(pid, "SIGSTOP");
      try {
        const turn = await bareTurn(decoder, PHASE_MS);
        bareTurns.images += turn.images;
        bareTurns.ms += turn.ms;
        bareTurns.turns++;
      } finally {
        for (const pid of [...pipeline].reverse()) process.kill(pid, "SIGCONT");
      }
      frozen.push([from, Date.now()]);
    }
    const frozenMs = (a: number, b: number) => frozen.reduce((n, [f, t]) => n + Math.max(0, Math.min(t, b) - Math.max(f, a)), 0);
    const cpuPerImage = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, (cpuSeconds(pid) - cpu0[k]!) / JOBS]));
    // The worker's event loop (job plumbing) apart from its decoder thread (the model).
    const threads1 = threadCpuSeconds(pids["decoder-worker"]);
    const threads = splitThreadCpu(pids["decoder-worker"], threads0, threads1);
    // What the other threads are (V8's GC/compiler helpers, libuv's pool, onnxruntime's own), by name.
    const byName = new Map<string, number>();
    for (const [tid, s] of threads1) {
      if (tid === pids["decoder-worker"]) continue;
      let name = "?";
      try {
        name = readFileSync(`/proc/${pids["decoder-worker"]}/task/${tid}/comm`, "utf8").trim();
      } catch {
        // the thread ended
      }
      byName.set(name, (byName.get(name) ?? 0) + (s - (threads0.get(tid) ?? 0)));
    }
    log(
      `decoder-worker threads besides the event loop, CPU ms per image by name: ${[...byName]
        .sort((a, b) => b[1] - a[1])
        .map(([n, v]) => `${n} ${fmt((1000 * v) / JOBS, 1)}`)
        .join(", ")}`,
    );
    const threadsPerImage = { main: threads.main / JOBS, busiest: threads.busiest / JOBS, rest: threads.rest / JOBS };
    // The decoder thread (the busiest besides the event loop): running, waiting for a CPU, or idle
    // for want of a batch, as shares of the drain.
    const wall = (performance.now() - wall0 - frozenMs(0, Infinity)) / 1000;
    const decoderThread = [...schedSeconds(pids["decoder-worker"])]
      .filter(([tid]) => tid !== pids["decoder-worker"])
      .map(([tid, s]) => ({ run: s.run - (sched0.get(tid)?.run ?? 0), wait: s.wait - (sched0.get(tid)?.wait ?? 0) }))
      .sort((a, b) => b.run - a.run)[0];
    const decoderShares = decoderThread ? { run: decoderThread.run / wall, wait: decoderThread.wait / wall } : { run: NaN, wait: NaN };
    await decodeQueue.close();
    const metrics = await (await fetch(`http://127.0.0.1:${worker.httpPort}/metrics`)).text();
    const sum = (name: string) =>
      metrics
        .split("\n")
        .filter((l) => l.startsWith(`${name}{`))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    const jobs = await listAllJobs(client);
    const bad = jobs.filter((j) => j.state !== JobState.JOB_STATE_SUCCEEDED);
    if (jobs.length !== JOBS || bad.length > 0) throw new Error(`${bad.length} of ${jobs.length} jobs did not succeed: ${bad[0]?.error?.message}`);
    // Steady state: from the first finished batch to the last job, so the worker process's start-up
    // (Node, model load, session creation: ~1 s, paid once per pod) is not divided into the figure.
    const done = jobs.map((j) => Date.parse(j.updateTime)).sort((a, b) => a - b);
    const first = done[BATCH - 1]!;
    const t1 = done[done.length - 1]!;
    const running = t1 - first - frozenMs(first, t1);
    log(`decoder worker: first ${BATCH} images ${first - t0} ms after start, the rest in ${running} ms of running (${frozen.length} turns frozen)`);
    if (running < 5000) log(`warning: a steady state of ${running} ms is mostly JIT warm-up; raise BENCH_JOBS`);
    return {
      bareTurns,
      imagesPerS: (JOBS - BATCH) / (running / 1000),
      avgBatch: sum("rebeca_decoder_batch_inferences_total") / sum("rebeca_decoder_batch_executions_total"),
      cpuPerImage,
      threadsPerImage,
      decoderShares,
    };
  } finally {
    client.close();
    redis.disconnect();
    await stack.stop();
    if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
  }
}

const users = readFileSync(join(REPO_ROOT, "models", "demo-v1", "user_ids.txt"), "utf8")
  .split("\n")
  .filter(Boolean);
// One decoder for every bare loop; it sits idle while the worker runs.
const { decoder } = await loadLatentDecoder(
  join(MODEL, "manifest.json"),
  { providers: ["cpu"], intraOpThreads: 1, interOpThreads: 1 },
  STEPS ? { steps: STEPS } : {},
);
const gainRun = await bare(decoder);
const worker = await throughWorker(users, decoder);
const base = (1000 * worker.bareTurns.images) / worker.bareTurns.ms;
const ratio = worker.imagesPerS / base;
const gain = gainRun.batched / gainRun.one;
log(
  `bare loop images/s: batch 1 / batch ${BATCH} ${fmt(gainRun.one, 1)} / ${fmt(gainRun.batched, 1)} before the worker; in ${worker.bareTurns.turns} turns with it, batch ${BATCH}: ${fmt(base, 1)}; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} on ${cpus().length} cores`,
);
const workerCpu = Object.values(worker.cpuPerImage).reduce((a, b) => a + b, 0);
log(
  `CPU ms per image: bare loop ${fmt(1000 * gainRun.cpuPerImage, 1)}; worker path ${fmt(1000 * workerCpu, 1)} (${Object.entries(worker.cpuPerImage)
    .map(([k, v]) => `${k} ${fmt(1000 * v, 1)}`)
    .join(", ")}; from the worker's ready line until its queue drained)`,
);
const t = worker.threadsPerImage;
const d = worker.decoderShares;
log(
  `decoder thread while the worker ran: running ${fmt(100 * d.run, 0)} %, waiting for a CPU ${fmt(100 * d.wait, 0)} %, idle (no batch) ${fmt(100 * (1 - d.run - d.wait), 0)} %`,
);
log(
  `decoder-worker CPU ms per image by thread: event loop ${fmt(1000 * t.main, 1)}, decoder thread ${fmt(1000 * t.busiest, 1)}, other threads ${fmt(1000 * t.rest, 1)}`,
);
report(
  "decoder batching",
  [
    { path: "bare in-process loop, batch 1", "images/s": fmt(gainRun.one, 1), "avg batch": "1" },
    { path: `bare in-process loop, batch ${BATCH}, in turns with the worker (baseline)`, "images/s": fmt(base, 1), "avg batch": String(BATCH) },
    { path: `decoder worker, single jobs micro-batched (max ${BATCH})`, "images/s": fmt(worker.imagesPerS, 1), "avg batch": fmt(worker.avgBatch, 2) },
  ],
  {
    model: VERSION,
    jobs: JOBS,
    batch: BATCH,
    steps: STEPS ?? "manifest",
    phaseMs: PHASE_MS,
    turns: worker.bareTurns.turns,
    cpuMsPerImageBare: 1000 * gainRun.cpuPerImage,
    cpuMsPerImageWorker: 1000 * workerCpu,
    baseline: base,
    batch1: gainRun.one,
    measured: worker.imagesPerS,
    avgBatch: worker.avgBatch,
    ratio,
    gainBatchOverOne: gain,
    target: 0.9,
    pass: ratio >= 0.9,
  },
);
console.log(`ratio ${fmt(ratio, 3)} (target ≥ 0.9); batch ${BATCH} over batch 1: ${fmt(gain, 2)}×`);
