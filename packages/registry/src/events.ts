import type { Redis } from "ioredis";
import { registryRedisKeys } from "./layout.js";

/** The `model.*` event types (the registry's audit trail). */
export const MODEL_EVENTS = {
  published: "model.published",
  /** A service found a version's index or a file not matching and will not serve it. */
  refused: "model.refused",
  canary: "model.canary",
  promoted: "model.promoted",
  rolledBack: "model.rolled_back",
  /** A version's files were rewritten in place (user-data erasure blanked rows of its user table). */
  revised: "model.revised",
} as const;
export type ModelEventType = (typeof MODEL_EVENTS)[keyof typeof MODEL_EVENTS];

/** One audit entry: who did what to which version, and why. */
export interface ModelEvent {
  type: ModelEventType;
  version: string;
  /** The tenant whose policy changed ("" for registry-wide events). */
  tenant: string;
  /** Who acted: an API key's tenant, `cli`, `monitor`, or a service name. */
  actor: string;
  reason: string;
  time: string;
  /** Further fields as JSON (the policy after the change, the statistics behind a rollback). */
  detail: string;
}

/** Most audit entries kept (an approximate cap, as the job event streams have). */
const MAX_EVENTS = 10_000;

type NewModelEvent = Omit<ModelEvent, "time"> & { time?: string };

const eventFields = (e: NewModelEvent): string[] => Object.entries({ ...e, time: e.time ?? new Date().toISOString() }).flat();

/** Appends an audit entry to the registry's event stream; returns its stream id. */
export async function recordModelEvent(redis: Redis, prefix: string, e: NewModelEvent): Promise<string> {
  const id = await redis.xadd(registryRedisKeys(prefix).events(), "MAXLEN", "~", String(MAX_EVENTS), "*", ...eventFields(e));
  return id!;
}

/**
 * Sets a field of a registry hash (only if it still holds ARGV[3] when ARGV[1] is "cas"), appends
 * the event (ARGV[8]…) to the audit stream and announces the change on ARGV[6], in one step.
 */
const WRITE_WITH_EVENT = `
if ARGV[1] == 'cas' and (redis.call('HGET', KEYS[1], ARGV[2]) or '') ~= ARGV[3] then return false end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(ARGV, 8))
redis.call('PUBLISH', ARGV[6], ARGV[7])
return id`;

/**
 * Writes `field` of the registry hash `hash` (versions, policies), records its `model.*` event and
 * publishes `announce` on the registry's change channel as one Redis script: a reader never sees
 * the write without its event (what a rollback's callback is keyed to), and a crash between them
 * cannot keep one without the other. With `expected`, the write happens only if the field still
 * holds that value ("" for absent): a compare-and-set against concurrent changes. Returns the
 * event's stream id, or null when `expected` no longer held.
 */
export async function writeWithModelEvent(
  redis: Redis,
  prefix: string,
  write: { hash: string; field: string; value: string; expected?: string },
  announce: Record<string, string>,
  e: NewModelEvent,
): Promise<string | null> {
  const keys = registryRedisKeys(prefix);
  const mode = write.expected === undefined ? "set" : "cas";
  return (await redis.eval(
    WRITE_WITH_EVENT,
    2,
    write.hash,
    keys.events(),
    mode,
    write.field,
    write.expected ?? "",
    write.value,
    String(MAX_EVENTS),
    keys.changes(),
    JSON.stringify(announce),
    ...eventFields(e),
  )) as string | null;
}

/** The newest `count` audit entries, newest first. */
export async function listModelEvents(redis: Redis, prefix: string, count = 50): Promise<(ModelEvent & { id: string })[]> {
  const rows = await redis.xrevrange(registryRedisKeys(prefix).events(), "+", "-", "COUNT", count);
  return rows.map(([id, flat]) => {
    const o: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) o[flat[i]!] = flat[i + 1]!;
    return { id, ...(o as unknown as ModelEvent) };
  });
}
