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

/** Appends an audit entry to the registry's event stream; returns its stream id. */
export async function recordModelEvent(redis: Redis, prefix: string, e: Omit<ModelEvent, "time"> & { time?: string }): Promise<string> {
  const fields = { ...e, time: e.time ?? new Date().toISOString() };
  const id = await redis.xadd(registryRedisKeys(prefix).events(), "MAXLEN", "~", String(MAX_EVENTS), "*", ...Object.entries(fields).flat());
  return id!;
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
