/*
 * Queue overhead per hop (enqueue → stage start), p50 and p99, at 200 jobs/s through the whole
 * pipeline (gateway → prior → decoder). Read from the workers' own
 * `rebeca_stage_queue_wait_seconds` histograms, the metric production dashboards use. Baseline in
 * the same run: a bare BullMQ Queue.add → Worker hop at the same rate on the same Redis.
 * Jobs are light (1 image, 10 DDIM steps) so that the hop, not the model, is measured.
 */
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { createJobClient, startStack } from "@rebeca/devstack";
import { Sampler } from "@rebeca/contracts/grpc";
import { openLoop } from "./load.js";
import { bucketQuantile, diffBuckets, histogramBuckets } from "./prom.js";
import { fmt, quantile, report } from "./stats.js";

const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const METRIC = "rebeca_stage_queue_wait_seconds";

const stack = await startStack({ services: ["gateway", "prior-worker", "decoder-worker"], tenants: ["bench"] });
const client = createJobClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
const redis = new Redis(stack.redis.url, { maxRetriesPerRequest: null });
redis.on("error", () => {}); // the stack stops Redis before this process exits
try {
  // Baseline: the bare BullMQ hop.
  const hops: number[] = [];
  const rawQueue = new Queue("raw-hop", { connection: redis, prefix: stack.prefix });
  const workerConnection = redis.duplicate();
  workerConnection.on("error", () => {});
  const rawWorker = new Worker("raw-hop", async (job) => void hops.push(Date.now() - job.timestamp), {
    connection: workerConnection,
    prefix: stack.prefix,
    concurrency: 1,
  });
  await openLoop(RATE, SECONDS, (i) => rawQueue.add("x", { i }, { removeOnComplete: true, priority: 1 }));
  while (hops.length < RATE * SECONDS) await new Promise((r) => setTimeout(r, 20));
  await rawWorker.close();
  await rawQueue.close();
  // A Worker does not close a connection it was given; left open, ioredis would keep reconnecting
  // to the stopped Redis and hold this process open.
  workerConnection.disconnect();

  const scrape = async () => {
    const text = await Promise.all(
      ["prior-worker", "decoder-worker"].map(async (n) => (await fetch(`http://127.0.0.1:${stack.services[n as "prior-worker"]!.httpPort}/metrics`)).text()),
    );
    return { prior: histogramBuckets(text[0]!, METRIC, 'queue="prior"'), decode: histogramBuckets(text[1]!, METRIC, 'queue="decode"') };
  };
  // Warm up, then measure only the run's observations.
  await openLoop(50, 2, (i) => client.createJob({ requestId: `warm-${i}`, userId: "u0001", steps: 10, sampler: Sampler.SAMPLER_DDIM }));
  await new Promise((r) => setTimeout(r, 1000));
  const before = await scrape();
  const ids: string[] = [];
  const load = await openLoop(RATE, SECONDS, async (i) =>
    ids.push((await client.createJob({ requestId: `hop-${i}`, userId: "u0001", steps: 10, sampler: Sampler.SAMPLER_DDIM })).job!.jobId),
  );
  // Wait for the last job to finish.
  for (;;) {
    const last = (await client.getJob(ids[ids.length - 1]!)).job!;
    if (last.outputs.length > 0 || last.error) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const after = await scrape();
  const prior = diffBuckets(after.prior, before.prior);
  const decode = diffBuckets(after.decode, before.decode);
  const ms = (s: number) => fmt(s * 1000);
  const rows = [
    { hop: "bare BullMQ add → worker (baseline)", jobs: hops.length, p50_ms: fmt(quantile(hops, 0.5)), p99_ms: fmt(quantile(hops, 0.99)) },
    { hop: "gateway → prior worker", jobs: prior[prior.length - 1]!.count, p50_ms: ms(bucketQuantile(prior, 0.5)), p99_ms: ms(bucketQuantile(prior, 0.99)) },
    {
      hop: "prior worker → decoder worker",
      jobs: decode[decode.length - 1]!.count,
      p50_ms: ms(bucketQuantile(decode, 0.5)),
      p99_ms: ms(bucketQuantile(decode, 0.99)),
    },
  ];
  report("queue hop latency", rows, {
    rate: RATE,
    achieved_rate: load.achievedRate,
    errors: load.errors,
    baseline_p50_ms: quantile(hops, 0.5),
    prior_p50_ms: bucketQuantile(prior, 0.5) * 1000,
    prior_p99_ms: bucketQuantile(prior, 0.99) * 1000,
    decode_p50_ms: bucketQuantile(decode, 0.5) * 1000,
    decode_p99_ms: bucketQuantile(decode, 0.99) * 1000,
  });
} finally {
  client.close();
  redis.disconnect();
  await stack.stop();
}
