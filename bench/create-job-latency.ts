/*
 * CreateJob latency under open-loop load from a client on the same machine (target: p99 < 10 ms
 * at 1,000 requests/s), then the highest rate whose p99 stays under 10 ms. Baseline in the same
 * run: a bare BullMQ `Queue.add` at the same rate against the same Redis — the floor any
 * Redis-backed enqueue pays.
 *
 * Load comes from a lean HTTP/2 gRPC caller (as ghz or h2load would send it): on two cores shared
 * with the gateway and Redis, the load generator's own GC pauses otherwise land in the tail it
 * measures. The same load from a grpc-js client (what a Node product service would use) is
 * reported beside it.
 */
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createJobClient, startStack } from "@rebeca/devstack";
import { CreateJobRequest, CreateJobResponse } from "@rebeca/contracts/grpc";
import { createUnaryCaller } from "./h2-unary.js";
import { openLoop } from "./load.js";
import { fmt, quantile, report } from "./stats.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const TARGET_P99_MS = 10;
const WARMUP_SECONDS = 5;

const stack = await startStack({ services: ["gateway"], tenants: ["bench"], env: { gateway: { MAX_PRIOR_BACKLOG: "10000000" } } });
const client = createJobClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
const lean = createUnaryCaller(stack.grpcAddress, { authorization: `Bearer ${stack.tenants.bench!.apiKey}` });
/** CreateJob through the lean caller; checks that a job came back. */
async function leanCreateJob(requestId: string) {
  const request = CreateJobRequest.encode(CreateJobRequest.fromPartial({ requestId, userId: "u0001", numImages: 4, labels: { bench: "latency" } })).finish();
  const response = CreateJobResponse.decode(await lean.call("/rebeca.v1.JobService/CreateJob", request));
  if (!response.job?.jobId) throw new Error("CreateJob returned no job");
}
const redis = new Redis(stack.redis.url, { maxRetriesPerRequest: null });
const rawQueue = new Queue("raw-baseline", { connection: redis, prefix: stack.prefix });
try {
  let run = 0;
  const createJobs = (rate: number) => {
    run++;
    return openLoop(rate, SECONDS, (i) => leanCreateJob(`r${run}-${i}`));
  };
  // Warm up at the measured rate, so JIT tiers and heap sizes have settled (a gentler warm-up
  // left the first measured seconds to compile and grow, doubling p99 in some runs).
  await openLoop(RATE, WARMUP_SECONDS, (i) => leanCreateJob(`warm-${i}`));
  await openLoop(RATE, WARMUP_SECONDS, (i) => client.createJob({ requestId: `warm-js-${i}`, userId: "u0001", numImages: 4, labels: { bench: "latency" } }));
  await openLoop(200, 2, (i) => rawQueue.add("x", { i }, { jobId: `warm-${i}` }));

  // CreateJob first: the baseline's 10,000 queued jobs would otherwise sit in the same Redis.
  const main = await createJobs(RATE);
  const viaGrpcJs = await openLoop(RATE, SECONDS, (i) =>
    client.createJob({ requestId: `js-${i}`, userId: "u0001", numImages: 4, labels: { bench: "latency" } }),
  );
  const base = await openLoop(RATE, SECONDS, (i) =>
    rawQueue.add("sample", { tenant: "bench", jobId: `b${i}`, userId: "u0001", numImages: 4 }, { jobId: `b${i}`, priority: 1, removeOnComplete: true }),
  );
  const rows = [
    {
      path: "BullMQ Queue.add (baseline)",
      rate: RATE,
      achieved: fmt(base.achievedRate, 0),
      p50_ms: fmt(quantile(base.latencies, 0.5)),
      p99_ms: fmt(quantile(base.latencies, 0.99)),
      errors: base.errors,
    },
    {
      path: "CreateJob, HTTP/2 load generator",
      rate: RATE,
      achieved: fmt(main.achievedRate, 0),
      p50_ms: fmt(quantile(main.latencies, 0.5)),
      p99_ms: fmt(quantile(main.latencies, 0.99)),
      errors: main.errors,
    },
    {
      path: "CreateJob, grpc-js client",
      rate: RATE,
      achieved: fmt(viaGrpcJs.achievedRate, 0),
      p50_ms: fmt(quantile(viaGrpcJs.latencies, 0.5)),
      p99_ms: fmt(quantile(viaGrpcJs.latencies, 0.99)),
      errors: viaGrpcJs.errors,
    },
  ];
  // Highest sustained rate: the highest step whose p99 stays under the target with no errors and
  // the offered rate achieved.
  const passes = (rate: number, r: Awaited<ReturnType<typeof openLoop>>) =>
    quantile(r.latencies, 0.99) < TARGET_P99_MS && r.errors === 0 && r.achievedRate >= rate * 0.97;
  let highest = passes(RATE, main) ? RATE : 0;
  for (const rate of [250, 500, 750, 1500, 2000, 3000]) {
    if (rate > RATE && highest < RATE) break;
    const r = await createJobs(rate);
    rows.push({
      path: "CreateJob, HTTP/2 load generator",
      rate,
      achieved: fmt(r.achievedRate, 0),
      p50_ms: fmt(quantile(r.latencies, 0.5)),
      p99_ms: fmt(quantile(r.latencies, 0.99)),
      errors: r.errors,
    });
    if (passes(rate, r)) highest = Math.max(highest, rate);
    else if (rate > RATE) break;
  }
  const p99 = quantile(main.latencies, 0.99);
  report("CreateJob latency", rows, {
    rate: RATE,
    p99_ms: p99,
    grpc_js_client_p99_ms: quantile(viaGrpcJs.latencies, 0.99),
    baseline_p99_ms: quantile(base.latencies, 0.99),
    ratio_p99_vs_baseline: p99 / quantile(base.latencies, 0.99),
    highest_rate_p99_under_10ms: highest,
    pass: p99 < TARGET_P99_MS && main.errors === 0,
  });
  console.log(
    `p99 ${fmt(p99)} ms at ${RATE}/s (target < ${TARGET_P99_MS} ms); ${fmt(p99 / quantile(base.latencies, 0.99))}× the bare Queue.add p99; highest rate with p99 < ${TARGET_P99_MS} ms: ${highest}/s`,
  );
} finally {
  client.close();
  lean.close();
  await rawQueue.close();
  redis.disconnect();
  await stack.stop();
}
