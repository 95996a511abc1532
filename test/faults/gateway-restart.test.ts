import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, freePort, startStack, type BatchClient, type Stack } from "@rebeca/devstack";
import type { UserChunk } from "@rebeca/contracts/grpc-batches";
import { modelUserIds } from "../support/world.js";
import { checkBatch, report } from "../support/invariants.js";

/*
 * Fault scenario: the gateway is SIGKILLed (twice) while a client streams a 2,000-user batch,
 * and restarted on the same address. The client resumes under its request_id from the batch's
 * received_users, as the CLI does; the batch must hold exactly the 2,000 users, each once, and
 * complete with every image and no duplicate object.
 */
describe("faults: gateway restarted while a client streams a batch", () => {
  let stack: Stack;
  let port: number;
  const users = modelUserIds();

  beforeAll(async () => {
    port = await freePort();
    stack = await startStack({ env: { gateway: { GRPC_PORT: String(port), SHARD_SIZE: "50" } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("the client resumes under its request_id and every user is in the batch exactly once", async () => {
    const ids = Array.from({ length: 2000 }, (_, i) => users[i % users.length]!);
    const requestId = "gw-restart-1";
    const client = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    // Kills planned for the first two streams: after this many chunks of 40 users were sent.
    const killAfter = [12, 9];
    let restarts = 0;

    /** Chunks from `from`, paced like a client reading a file over a slow link; kills on cue. */
    async function* paced(from: number, stream: number): AsyncGenerator<UserChunk> {
      let sent = 0;
      for (const chunk of chunksOf(ids, 40, from)) {
        if (sent === killAfter[stream]) {
          await stack.services.gateway!.process.kill();
          restarts++;
          // Back on the same port while the client is failing over (not awaited here).
          void stack.start("gateway").catch((err: Error) => console.error("gateway restart failed", err.message));
          await new Promise((r) => setTimeout(r, 50));
        }
        yield chunk;
        sent++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }

    const receivedUsers = async (c: BatchClient) => {
      const found = (await c.listBatches(100)).batches.find((b) => b.requestId === requestId);
      return Number(found?.receivedUsers ?? 0);
    };

    const offsets: number[] = [];
    let batchId = "";
    for (let stream = 0; ; stream++) {
      expect(stream, "streams before the batch was accepted").toBeLessThan(6);
      // Resume from what the gateway stored (0 when it never saw the parameters).
      let from = 0;
      for (let tries = 0; ; tries++) {
        try {
          from = await receivedUsers(client);
          break;
        } catch (err) {
          if ((err as { code?: number }).code !== 14 || tries > 600) throw err;
          await new Promise((r) => setTimeout(r, 100)); // gateway still starting
        }
      }
      offsets.push(from);
      try {
        batchId = (await client.createBatch({ requestId, numImages: 1 }, paced(from, stream))).batchId;
        break;
      } catch (err) {
        // UNAVAILABLE (connection lost) or CANCELLED: resend under the same request_id.
        expect([1, 14]).toContain((err as { code?: number }).code);
      }
    }
    expect(restarts).toBe(2);
    // The kills landed mid-stream: the client resumed from inside the batch, not from scratch.
    expect(offsets[1]).toBeGreaterThan(0);
    expect(offsets[1]).toBeLessThan(2000);
    expect(offsets[2]).toBeGreaterThan(offsets[1]!);

    const batches = (await client.listBatches(100)).batches.filter((b) => b.requestId === requestId);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.batchId).toBe(batchId);
    const figures = await checkBatch(stack, client, batchId, ids, 1, 400_000);
    expect(Number((await client.getBatch(batchId)).receivedUsers)).toBe(2000);
    report("gateway-restart", { users: figures, restarts, resumedFrom: offsets });
    client.close();
  }, 600_000);
});
