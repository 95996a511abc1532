import type { Redis } from "ioredis";
import { redisKeys } from "@rebeca/contracts";

/**
 * The record of a decode shard's finished chunks: a hash of first image → the chunk's outputs
 * (JSON), kept for the retention period so a successor of a killed worker resumes after them.
 */
export function createShardProgress(redis: Redis, options: { prefix: string; retentionSeconds?: number }) {
  const keys = redisKeys(options.prefix);
  const retention = options.retentionSeconds ?? 7 * 24 * 3600;
  return {
    /** The progress of one shard, in the shape `runChunks` takes. */
    of<T>(batchId: string, shard: number) {
      const key = keys.shardChunks(batchId, shard);
      return {
        async finished(): Promise<Map<number, T[]>> {
          const fields = await redis.hgetall(key);
          return new Map(Object.entries(fields).map(([start, json]) => [Number(start), JSON.parse(json) as T[]]));
        },
        async record(start: number, outputs: T[]): Promise<void> {
          await redis.hset(key, String(start), JSON.stringify(outputs));
          await redis.expire(key, retention);
        },
        /** Forgets the record once the shard is counted (its result file holds the outputs). */
        async clear(): Promise<void> {
          await redis.del(key);
        },
      };
    },
  };
}
export type ShardProgressStore = ReturnType<typeof createShardProgress>;
