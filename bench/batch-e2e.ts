/*
 * End to end: a 10,000-user × 1-image batch through the whole pipeline (CreateBatch stream →
 * gateway → prior worker → decoder worker → s3rver → result manifest → batch.completed callback),
 * with users/s and the CPU-seconds each process spent per user, read from /proc. Baseline in the
 * same run: the same users through a bare in-process loop of the same models (sample → decode →
 * PNG) with no queue, Redis or S3 — the compute the pipeline cannot avoid. Ends with the nodes each
 * stage needs for 10M users in an 8-hour night (docs/capacity.md keeps the table).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { batchImageSeed } from "@rebeca/contracts";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { chunksOf, createBatchClient, REPO_ROOT, startStack, startWebhookReceiver, type Stack } from "@rebeca/devstack";
import {
  createOnnxPrior,
  createOnnxSession,
  createPriorSampler,
  createSingleShotDecoder,
  encodePng,
  imageAt,
  loadDecoderModelFiles,
  loadPriorModelFiles,
} from "@rebeca/inference";
import { cpuSeconds, splitThreadCpu, threadCpuSeconds } from "./proc.js";
import { fmt, report } from "./stats.js";

const USERS = Number(process.env.BENCH_USERS ?? 10_000);
const SHARD = 256;
const CHUNK = 16;
const VERSION = "demo-v1";
const NIGHT = { users: 10_000_000, hours: 8 };
/** A node as the projection counts it: 16 cores kept 70 % busy. */
const NODE = { cores: 16, utilization: 0.7 };

const modelUsers = readFileSync(join(REPO_ROOT, "models", VERSION, "user_ids.txt"), "utf8")
  .split("\n")
  .filter(Boolean);
const users = Array.from({ length: USERS }, (_, i) => modelUsers[i % modelUsers.length]!);

async function bare(): Promise<number> {
  const prior = await loadPriorModelFiles(join(REPO_ROOT, "models", VERSION, "manifest.json"));
  const priorSession = await createOnnxSession(prior.prior.bytes, { providers: ["cpu"], intraOpThreads: 1, interOpThreads: 1 });
  const sampler = createPriorSampler({
    model: createOnnxPrior(priorSession.session, { embeddingDim: prior.manifest.embedding_dim, userDim: prior.manifest.user_dim }),
    userTable: prior.userTable,
    manifest: prior.manifest,
  });
  const dec = await loadDecoderModelFiles(join(REPO_ROOT, "models", VERSION, "decoder", "manifest.json"));
  const m = dec.manifest;
  const decoderSession = await createOnnxSession(dec.files["decoder"]!.bytes, { providers: ["cpu"], intraOpThreads: 1, interOpThreads: 1 });
  const decoder = createSingleShotDecoder(decoderSession.session, {
    embeddingDim: m.embedding_dim,
    channels: m.channels,
    height: m.height,
    width: m.width,
    io: m.io.decoder,
  });
  const d = prior.manifest.defaults;
  const run = async (ids: string[]) => {
    for (let start = 0; start < ids.length; start += CHUNK) {
      const chunk = ids.slice(start, start + CHUNK);
      const embeddings = await sampler.sample({
        userRow: chunk.map((u) => prior.userTable.rowOf(u) ?? null),
        seeds: chunk.map((_, j) => batchImageSeed(0, start + j, 0)),
        guidance: d.guidance,
        // As the gateway fills in defaults: the paper's DDPM visits every timestep.
        steps: d.sampler === "ddpm" ? prior.manifest.schedule.timesteps : d.steps,
        sampler: d.sampler,
        spacing: d.sampler === "ddpm" ? "linspace" : (d.spacing ?? "linspace"),
      });
      const images = await decoder.decode(embeddings, chunk.length);
      for (let i = 0; i < chunk.length; i++) encodePng(imageAt(images, i));
    }
  };
  await run(users.slice(0, 64)); // warm-up
  const t0 = performance.now();
  await run(users);
  return USERS / ((performance.now() - t0) / 1000);
}

async function throughPipeline(): Promise<{
  usersPerSecond: number;
  cpuPerUser: Record<string, number>;
  priorPerUser: { main: number; sampler: number; rest: number };
  succeeded: number;
}> {
  const receiver = await startWebhookReceiver();
  const stack: Stack = await startStack({
    tenants: ["bench"],
    env: { gateway: { SHARD_SIZE: String(SHARD), MAX_PRIOR_BACKLOG: "100000000" }, "prior-worker": JSON.parse(process.env.BENCH_PRIOR_ENV ?? "{}") },
  });
  const client = createBatchClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
  try {
    const pids: Record<string, number> = { redis: stack.redis.process.child.pid!, s3rver: stack.s3.process.child.pid! };
    for (const [name, svc] of Object.entries(stack.services)) pids[name] = svc!.process.child.pid!;
    const before = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, cpuSeconds(pid)]));
    const priorThreadsBefore = threadCpuSeconds(pids["prior-worker"]);
    const t0 = performance.now();
    const batch = await client.createBatch(
      { requestId: "e2e", numImages: 1, callbackUrl: receiver.url, callbackEvents: ["batch.completed"] },
      chunksOf(users, 10_000),
    );
    await receiver.until((all) => all.some((r) => JSON.parse(r.body).data?.batch_id === batch.batchId), 1_800_000);
    const seconds = (performance.now() - t0) / 1000;
    const after = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, cpuSeconds(pid)]));
    const prior = splitThreadCpu(pids["prior-worker"], priorThreadsBefore, threadCpuSeconds(pids["prior-worker"]));
    const done = await client.getBatch(batch.batchId);
    if (done.state !== BatchState.BATCH_STATE_COMPLETED) throw new Error(`batch ended in state ${done.state}`);
    const cpuPerUser = Object.fromEntries(Object.keys(pids).map((n) => [n, (after[n]! - before[n]!) / USERS]));
    // The prior worker's CPU by thread: event loop (queue work), sampler thread, the rest (GC helpers).
    const priorPerUser = { main: prior.main / USERS, sampler: prior.busiest / USERS, rest: prior.rest / USERS };
    return { usersPerSecond: USERS / seconds, cpuPerUser, priorPerUser, succeeded: Number(done.counts!.succeeded) };
  } finally {
    client.close();
    await stack.stop();
    await receiver.close();
  }
}

const bareRate = await bare();
const pipeline = await throughPipeline();
const perNode = NODE.cores * NODE.utilization;
const nightRate = NIGHT.users / (NIGHT.hours * 3600);
const rows = Object.entries(pipeline.cpuPerUser).map(([process, cpu]) => ({
  process,
  cpu_ms_per_user: fmt(cpu * 1000),
  users_per_core_s: fmt(1 / cpu, 0),
  nodes_for_10M_in_8h: fmt(Math.ceil((nightRate * cpu) / perNode), 0),
}));
report("batch end to end", rows, {
  users: USERS,
  succeeded: pipeline.succeeded,
  pipeline_users_per_s: pipeline.usersPerSecond,
  bare_users_per_s: bareRate,
  ratio_vs_bare: pipeline.usersPerSecond / bareRate,
  cpu_s_per_user_total: Object.values(pipeline.cpuPerUser).reduce((a, b) => a + b, 0),
  night_users_per_s: nightRate,
  prior_cpu_ms_per_user_by_thread: Object.fromEntries(Object.entries(pipeline.priorPerUser).map(([k, v]) => [k, v * 1000])),
});
console.log(
  `${USERS} users in ${fmt(USERS / pipeline.usersPerSecond, 1)} s: ${fmt(pipeline.usersPerSecond, 0)} users/s through the pipeline, ` +
    `${fmt(bareRate, 0)} users/s bare in-process (ratio ${fmt(pipeline.usersPerSecond / bareRate)}); 10M users in 8 h need ${fmt(nightRate, 0)} users/s; ` +
    `prior CPU per user: event loop ${fmt(pipeline.priorPerUser.main * 1000, 3)} ms, sampler thread ${fmt(pipeline.priorPerUser.sampler * 1000, 3)} ms, other threads ${fmt(pipeline.priorPerUser.rest * 1000, 3)} ms`,
);
