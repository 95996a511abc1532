/**
 * Images-per-day reservations of batches. A batch's users stream in after it is admitted, so the
 * images it will make are counted against the day's quota as its users are stored, not as its
 * images are made: one batch cannot overshoot the quota by running past it.
 *
 * The rule: a batch reserves users × num_images on the UTC day its users are stored. What it has
 * made (`succeeded` × num_images) is already in the day's usage, so only the rest is outstanding;
 * when the batch ends (completed, failed, cancelled or expired) nothing of it is outstanding any
 * more: what an EXPIRED or cancelled batch did not make goes back to the quota, and what it made
 * stays counted in usage. The day's use for the quota is usage images + outstanding reservations.
 */
import type { Redis } from "ioredis";
import { redisKeys } from "@rebeca/contracts";
import { userDataKeys } from "./keys.js";
import { dayOf } from "./usage.js";

/** Reservations are read for two days at most (the day they are made, and a batch running past midnight). */
const LEDGER_TTL_SECONDS = 2 * 24 * 3600;

// KEYS: ledger (batch id → "reserved:numImages"), today's usage hash, then one batch hash per
// ledger id, in order. ARGV: batch id ('' = a check that reserves nothing), images wanted by it in
// all, limit, ledger ttl, the ids the caller read from the ledger, and last the batch's images per user.
// Returns {1, used} (reserved, or within the limit), {0, used} (refused: nothing changed) or
// {-1} (the ledger changed since the caller read it: read again).
const RESERVE = `
local ids = {}
for i = 5, #ARGV - 1 do ids[#ids + 1] = ARGV[i] end
if redis.call('HLEN', KEYS[1]) ~= #ids then return {-1} end
local used = tonumber(redis.call('HGET', KEYS[2], 'images') or '0')
local mine = ARGV[1]
local want = tonumber(ARGV[2])
local ended = {}
local mineEnded = false
for i, id in ipairs(ids) do
  local v = redis.call('HGET', KEYS[1], id)
  if not v then return {-1} end
  local reserved, per = string.match(v, '^(%d+):(%d+)$')
  reserved = tonumber(reserved)
  local b = redis.call('HMGET', KEYS[2 + i], 'state', 'succeeded')
  local state = b[1]
  if not state or state == 'completed' or state == 'failed' or state == 'cancelled' or state == 'expired' then
    ended[#ended + 1] = id
    if id == mine then mineEnded = true end
  else
    if id == mine and want > reserved then reserved = want end
    local left = reserved - tonumber(b[2] or '0') * tonumber(per)
    if left > 0 then used = used + left end
  end
end
local known = redis.call('HEXISTS', KEYS[1], mine) == 1
if mine ~= '' and not known then used = used + want end
if used > tonumber(ARGV[3]) then return {0, used} end
for _, id in ipairs(ended) do redis.call('HDEL', KEYS[1], id) end
if mine ~= '' and not mineEnded then
  local v = redis.call('HGET', KEYS[1], mine)
  local reserved = v and tonumber(string.match(v, '^(%d+):')) or 0
  if want > reserved then redis.call('HSET', KEYS[1], mine, want .. ':' .. ARGV[#ARGV]) end
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return {1, used}
`;

/** A batch's reservation: how many images it asks for in all so far, and its images per user. */
export interface BatchImageAsk {
  batchId: string;
  images: number;
  numImages: number;
}

export function createImageReservations(redis: Redis, prefix: string, now: () => Date = () => new Date()) {
  const keys = userDataKeys(prefix);
  const jobKeys = redisKeys(prefix);

  async function run(tenant: string, ask: BatchImageAsk | null, limit: number): Promise<{ ok: boolean; used: number }> {
    const day = dayOf(now());
    const ledger = keys.imageReservations(tenant, day);
    for (let attempt = 0; attempt < 10; attempt++) {
      const ids = await redis.hkeys(ledger);
      const out = (await redis.eval(
        RESERVE,
        2 + ids.length,
        ledger,
        keys.usage(tenant, day),
        ...ids.map((id) => jobKeys.batch(id)),
        ask?.batchId ?? "",
        ask?.images ?? 0,
        limit,
        LEDGER_TTL_SECONDS,
        ...ids,
        String(ask?.numImages ?? 0),
      )) as [number, number?];
      if (out[0] !== -1) return { ok: out[0] === 1, used: out[1] ?? 0 };
    }
    throw new Error(`image reservations of ${tenant} kept changing while being read; try again`);
  }

  return {
    /**
     * Reserves `ask.images` (all the batch asks for so far; a repeat or a smaller ask changes
     * nothing) unless the day's use would pass `limit`. Refused: nothing is reserved.
     * @returns whether it fits, and the day's use counted with it
     */
    reserve: (tenant: string, ask: BatchImageAsk, limit: number) => run(tenant, ask, limit),

    /** The day's use for the quota: images made today plus what running batches reserved and have not made yet. */
    async used(tenant: string): Promise<number> {
      return (await run(tenant, null, Number.MAX_SAFE_INTEGER)).used;
    },
  };
}
export type ImageReservations = ReturnType<typeof createImageReservations>;
