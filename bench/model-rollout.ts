/*
 * The model registry on the real stack (gateway, prior and decoder workers, each with its own
 * MODEL_CACHE_DIR; docs/operations.md#model-rollout):
 *  - publish → first job served: from the start of publishing a version (a derived copy of demo-v1,
 *    ~4 MB) until the first job that names it has succeeded (the gateway refuses the name until it
 *    has fetched and verified it; the job then waits for the workers to fetch, verify and load it);
 *  - worker memory (RSS) with 1, 2 and 4 versions loaded (workers start with demo-v1 only; each
 *    further version is published and served once);
 *  - throughput of demo-v1 jobs while a new version is being published and loaded, against the
 *    mean of the same run just before and just after (baseline): the ratio should stay near 1.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { createJobClient, REPO_ROOT, startStack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { publishDerivedVersion, publishVersionDir } from "@rebeca/registry";
import { registryOf } from "./registry.js";
import { fmt, quantile, report } from "./stats.js";

const JOBS = Number(process.env.BENCH_JOBS ?? 40);
const users = readFileSync(join(REPO_ROOT, "models/demo-v1/user_ids.txt"), "utf8").split("\n").filter(Boolean);
const rssMb = (pid: number | undefined) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

const caches = await Promise.all([0, 1, 2].map(() => mkdtemp(join(tmpdir(), "bench-model-cache-"))));
const env = (dir: string) => ({ MODEL_CACHE_DIR: dir, REGISTRY_POLL_MS: "1000", MODEL_VERSIONS: "demo-v1", ORT_INTRA_OP_THREADS: "1" });
const stack = await startStack({
  services: ["gateway", "prior-worker", "decoder-worker"],
  tenants: ["bench"],
  env: { gateway: env(caches[0]!), "prior-worker": env(caches[1]!), "decoder-worker": env(caches[2]!) },
});
const client = createJobClient(stack.grpcAddress, stack.tenants.bench!.apiKey);
const redis = new Redis(stack.redis.url);
const registry = registryOf(stack, redis);
let n = 0;
async function served(modelVersion: string, userId = users[0]!): Promise<void> {
  for (;;) {
    try {
      const { job } = await client.createJob({ requestId: `r-${n++}`, userId, modelVersion, numImages: 1 });
      for (;;) {
        const j = (await client.getJob(job!.jobId)).job!;
        if (j.state === JobState.JOB_STATE_SUCCEEDED) return;
        if (j.state === JobState.JOB_STATE_FAILED) throw new Error(`job on ${modelVersion} failed: ${j.error?.message}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } catch (err) {
      if ((err as { code?: number }).code !== 9) throw err; // FAILED_PRECONDITION: not fetched yet
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
/** Seconds to run `JOBS` one-image demo-v1 jobs, all submitted at once. */
async function batchSeconds(): Promise<number> {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: JOBS }, (_, i) => served("demo-v1", users[i % users.length]!)));
  return (performance.now() - t0) / 1000;
}

try {
  await served("demo-v1");
  const memory: { loaded: number; prior: number; decoder: number }[] = [];
  const snap = (loaded: number) =>
    memory.push({
      loaded,
      prior: rssMb(stack.services["prior-worker"]!.process.child.pid),
      decoder: rssMb(stack.services["decoder-worker"]!.process.child.pid),
    });
  snap(1);
  await publishVersionDir(registry, `${REPO_ROOT}models/demo-v1`, { actor: "bench" });
  const latencies: number[] = [];
  for (let k = 2; k <= 4; k++) {
    const t0 = performance.now();
    await publishDerivedVersion(registry, "demo-v1", `bench-v${k}`, new Map(), { actor: "bench", reason: "bench" });
    await served(`bench-v${k}`);
    latencies.push((performance.now() - t0) / 1000);
    if (k !== 3) snap(k);
  }
  await batchSeconds(); // warm-up: the first run of a fresh stack is slower whatever follows
  const before = await batchSeconds();
  // The same run while a fifth version is published, fetched, verified and loaded by every service.
  const loading = (async () => {
    await publishDerivedVersion(registry, "demo-v1", "bench-v5", new Map(), { actor: "bench", reason: "bench" });
    await served("bench-v5");
  })();
  const during = await batchSeconds();
  await loading;
  const after = await batchSeconds();
  // Baselines on both sides of the loading run, so drift of a shared machine's load shows as their spread.
  const base = (before + after) / 2;
  const ratio = base / during;
  report(
    "model-rollout",
    [
      ...latencies.map((s, i) => ({ measure: `publish → first job served (bench-v${i + 2}), s`, value: fmt(s) })),
      { measure: `${JOBS} demo-v1 jobs, baseline before, s`, value: fmt(before) },
      { measure: `${JOBS} demo-v1 jobs while bench-v5 is published and loaded, s`, value: fmt(during) },
      { measure: `${JOBS} demo-v1 jobs, baseline after, s`, value: fmt(after) },
      ...memory.flatMap((m) => [
        { measure: `prior-worker RSS with ${m.loaded} version(s) loaded, MB`, value: fmt(m.prior, 0) },
        { measure: `decoder-worker RSS with ${m.loaded} version(s) loaded, MB`, value: fmt(m.decoder, 0) },
      ]),
    ],
    {
      publishToServedMedianSeconds: Number(fmt(quantile(latencies, 0.5))),
      throughputRatioWhileLoading: Number(fmt(ratio)),
      priorRssMb: memory.map((m) => Math.round(m.prior)),
      decoderRssMb: memory.map((m) => Math.round(m.decoder)),
    },
  );
} finally {
  client.close();
  redis.disconnect();
  await stack.stop();
  for (const d of caches) await rm(d, { recursive: true, force: true });
}
