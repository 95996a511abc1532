import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, REPO_ROOT, startStack, type Stack } from "@rebeca/devstack";
import { JobState } from "@rebeca/contracts/grpc";
import { BatchState } from "@rebeca/contracts/grpc-batches";
import { makeServerCertificates } from "../support/redis-tls.js";
import { untilBatchCompleted, untilJobDone } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

const run = promisify(execFile);

/*
 * Managed Redis speaks TLS: every service (gateway, prior and decoder workers, notifier: their
 * stores and their BullMQ queues and workers alike) and the CLI take a `rediss://` URL. Redis here
 * serves TLS only, with a certificate from a CA made by the test, trusted through
 * NODE_EXTRA_CA_CERTS.
 */
describe("Redis over TLS (rediss://)", () => {
  let stack: Stack;
  const certs = makeServerCertificates();
  const users = modelUserIds();

  beforeAll(async () => {
    stack = await startStack({ redisTls: certs, env: { gateway: { SHARD_SIZE: "8" } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("serves TLS only: a plaintext client gets no answer", async () => {
    expect(stack.redis.url).toMatch(/^rediss:\/\/127\.0\.0\.1:\d+$/);
    const plain = await run("redis-cli", ["-p", String(stack.redis.port), "PING"], { timeout: 5000 }).catch((e: { stdout?: string; stderr?: string }) => e);
    expect(`${plain.stdout ?? ""}`).not.toContain("PONG");
    const tls = await run("redis-cli", ["--tls", "--cacert", certs.caFile, "-p", String(stack.redis.port), "PING"]);
    expect(tls.stdout.trim()).toBe("PONG");
  });

  it("runs a job and a batch end to end with every service on rediss://", async () => {
    const jobs = createJobClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const batches = createBatchClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
    const { job } = await jobs.createJob({ requestId: "tls-job", userId: users[0]!, numImages: 2 });
    const ids = users.slice(0, 16);
    const batch = await batches.createBatch({ requestId: "tls-batch", numImages: 1 }, chunksOf(ids, 8));
    const done = await untilJobDone(jobs, job!.jobId, 120_000);
    expect(done.state).toBe(JobState.JOB_STATE_SUCCEEDED);
    expect(done.outputs).toHaveLength(2);
    const finished = await untilBatchCompleted(batches, batch.batchId, 120_000);
    expect(finished.state).toBe(BatchState.BATCH_STATE_COMPLETED);
    expect(finished.counts).toMatchObject({ total: 16, succeeded: 16 });
    jobs.close();
    batches.close();
  });

  it("the CLI reads backlogs over rediss:// too", async () => {
    const env = { ...process.env, REDIS_URL: stack.redis.url, QUEUE_PREFIX: stack.prefix, NODE_EXTRA_CA_CERTS: certs.caFile };
    const { stdout } = await run(process.execPath, [`${REPO_ROOT}packages/cli/dist/main.js`, "backlog"], { env, timeout: 60_000 });
    expect(stdout).toMatch(/^prior\tinteractive\tacme\t\d+/m);
    expect(stdout).toMatch(/^decode\tbatch\tglobex\t\d+/m);
  });
});
