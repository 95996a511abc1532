import type { Redis } from "ioredis";
import type { AfterErasure } from "@rebeca/contracts";
import { batchOutputRef, userDataKeys } from "./keys.js";

/*
 * The per-(tenant, user) index that lets an erasure find a user's data without scanning the
 * bucket: the job ids are added at intake (before the job record exists, so a crash in between
 * leaves an entry that points at nothing, never a job that is not indexed), and a batch's outputs
 * where the decode stage records them. Each entry costs one SADD in a pipeline the caller is
 * already paying a round trip for.
 */

// One round trip at CreateJob: an erased user under "reject" is refused and not indexed again.
const ADMIT_JOB = `
local mode = redis.call('HGET', KEYS[1], ARGV[1])
if mode == 'reject' then return mode end
redis.call('SADD', KEYS[2], ARGV[2])
return mode or ''
`;

export function createUserIndex(redis: Redis, prefix: string) {
  const keys = userDataKeys(prefix);
  if (!("rebecaAdmitUserJob" in redis)) redis.defineCommand("rebecaAdmitUserJob", { numberOfKeys: 2, lua: ADMIT_JOB });
  const admit = (redis as unknown as { rebecaAdmitUserJob: (...a: string[]) => Promise<string> }).rebecaAdmitUserJob.bind(redis);

  return {
    keys,
    /**
     * Indexes a new job of `userId` unless the user was erased with "reject".
     * @returns what an erasure of this user said about later requests, or null when they were never erased
     */
    async admitJob(tenant: string, userId: string, jobId: string): Promise<AfterErasure | null> {
      const mode = await admit(keys.erased(tenant), keys.userJobs(tenant, userId), userId, jobId);
      return mode === "" ? null : (mode as AfterErasure);
    },

    /** Records where a decoded shard put each user's outputs (one pipeline). */
    async recordBatchOutputs(tenant: string, batchId: string, shard: number, users: readonly { user_id: string; position: number }[]): Promise<void> {
      if (users.length === 0) return;
      const pipeline = redis.pipeline();
      for (const u of users) pipeline.sadd(keys.userBatchOutputs(tenant, u.user_id), batchOutputRef({ batchId, position: u.position, shard }));
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    },

    /** What each of `userIds` gets after an erasure (null: never erased), in order. */
    async erasedModes(tenant: string, userIds: readonly string[]): Promise<(AfterErasure | null)[]> {
      if (userIds.length === 0) return [];
      const modes = await redis.hmget(keys.erased(tenant), ...userIds);
      return modes.map((m) => (m as AfterErasure | null) ?? null);
    },
  };
}
export type UserIndex = ReturnType<typeof createUserIndex>;
