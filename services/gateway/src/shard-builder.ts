import { ValidationError } from "./validate.js";

export interface BuiltShard {
  index: number;
  firstPosition: number;
  userIds: string[];
}

/**
 * Cuts a stream of user-id chunks into shards of `shardSize` consecutive positions (pure).
 * It starts at `received` — the first position not yet in a stored shard — so a client resuming
 * a broken stream may resend from any offset at or before it: what is already stored is skipped,
 * and the same positions always make the same shard (deterministic shard ids).
 */
export function createShardBuilder(shardSize: number, received: number, maxUsers: number) {
  let buffer: string[] = [];
  let bufferStart = received;
  const next = () => bufferStart + buffer.length;

  function cut(all: boolean): BuiltShard[] {
    const shards: BuiltShard[] = [];
    while (buffer.length >= shardSize || (all && buffer.length > 0)) {
      const userIds = buffer.slice(0, shardSize);
      buffer = buffer.slice(userIds.length);
      shards.push({ index: Math.floor(bufferStart / shardSize), firstPosition: bufferStart, userIds });
      bufferStart += userIds.length;
    }
    return shards;
  }

  return {
    /** Position after the last id taken so far. */
    next,
    /** Position up to which shards are complete (the resume point once they are stored). */
    stored: () => bufferStart,
    /** Takes a chunk; returns the shards it completed. */
    push(offset: number, ids: string[]): BuiltShard[] {
      if (!Number.isInteger(offset) || offset < 0) throw new ValidationError([{ field: "users.offset", description: "must be a non-negative integer" }]);
      if (offset > next())
        throw new ValidationError([
          { field: "users.offset", description: `chunk starts at ${offset} but ${next()} users were received: resend from ${next()} or earlier` },
        ]);
      const fresh = ids.slice(next() - offset);
      if (next() + fresh.length > maxUsers) throw new ValidationError([{ field: "users.user_ids", description: `a batch holds at most ${maxUsers} users` }]);
      for (const id of fresh) buffer.push(id);
      return cut(false);
    },
    /** The last chunk arrived: the partial shard, if any. */
    finish: (): BuiltShard[] => cut(true),
  };
}
