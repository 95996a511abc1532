import type { Queue } from "bullmq";
import { backlogOf } from "@rebeca/platform";

/**
 * Backpressure between stages: before sampling a shard, wait while the tenant's decode backlog is
 * past `limit`, so a fast prior stage cannot pile embeddings up in front of slower decoders.
 */
export function createDecodeHoldBack(decodeQueueOf: (tenant: string) => Queue, limit: number, pollMs = 200, maxWaitMs = 60_000) {
  return async (tenant: string) => {
    const deadline = Date.now() + maxWaitMs;
    // Bounded, so a stuck decode stage delays shards without holding their locks forever.
    while (Date.now() < deadline && (await backlogOf(decodeQueueOf(tenant))).total > limit) {
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };
}
