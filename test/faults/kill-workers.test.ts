import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";
import { checkBatch, checkJobs, report } from "../support/invariants.js";

/*
 * Fault scenario (issue 5, first of the suite): prior and decoder workers are SIGKILLed at
 * random moments during a batch and during single jobs, and restarted. Every accepted job and
 * user must end exactly once with its output, with no duplicate objects. Locks are short here so
 * dead workers' jobs come back in seconds, not minutes. CI: 240 users, 3 kills; FAULTS_FULL=1:
 * the issue's 2,000 users and 8 kills spread over the batch.
 */
const FULL = process.env.FAULTS_FULL === "1";
const USERS = FULL ? 2000 : 240;
const ROUNDS = FULL ? 8 : 3;

describe("faults: workers killed mid-batch", () => {
  let stack: Stack;
  const users = modelUserIds();
  const fast = { LOCK_DURATION_MS: "3000", STALLED_INTERVAL_MS: "1000" };

  beforeAll(async () => {
    stack = await startStack({ env: { gateway: { SHARD_SIZE: "8" }, "prior-worker": fast, "decoder-worker": fast } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it(
    `every user of a ${USERS}-user batch and every job ends exactly once with its output, and no object is duplicated`,
    async () => {
      const batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
      const jobs = createJobClient(stack.grpcAddress, stack.tenants.globex!.apiKey);
      const ids = Array.from({ length: USERS }, (_, i) => users[i % users.length]!);
      const shards = USERS / 8;
      // DDPM (1000 steps) keeps the workers busy long enough for the kills to land mid-shard.
      const batch = await batches.createBatch({ requestId: "fault-1", numImages: 2, sampler: 2 }, chunksOf(ids, 50));
      const single = await Promise.all(
        Array.from(
          { length: 10 },
          async (_, i) => (await jobs.createJob({ requestId: `fault-job-${i}`, userId: users[i]!, numImages: 2, steps: 200 })).job!.jobId,
        ),
      );

      // Kill and restart a worker at random moments while work is in flight (prior and decoder in
      // turn); the full run spaces the kills over the whole batch.
      const doneAtKill: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        await new Promise((r) => setTimeout(r, (FULL ? 3000 : 200) + Math.random() * (FULL ? 4000 : 400)));
        doneAtKill.push((await batches.getBatch(batch.batchId)).shardsDone);
        const victim = round % 2 === 0 ? "prior-worker" : "decoder-worker";
        await stack.services[victim]!.process.kill();
        await stack.start(victim, fast);
      }

      // The kills landed mid-batch (else this test would prove nothing).
      expect(doneAtKill[0]).toBeLessThan(shards);
      expect(doneAtKill.at(-1)).toBeLessThan(shards);
      const figures = await checkBatch(stack, batches, batch.batchId, ids, 2, FULL ? 900_000 : 300_000);
      expect((await batches.getBatch(batch.batchId)).shardsDone).toBe(shards);
      const jobFigures = await checkJobs(stack, jobs, "globex", single, 2);
      report("kill-workers", { users: figures, jobs: jobFigures, kills: ROUNDS, shardsDoneAtKills: doneAtKill, shards });
      batches.close();
      jobs.close();
    },
    FULL ? 1_200_000 : 600_000,
  );
});
