import type { Redis } from "ioredis";
import { registryRedisKeys } from "./layout.js";

/** A change announced on the registry's channel. */
export type RegistryChange = { kind: "version"; version: string } | { kind: "policy"; tenant: string };

export interface RegistryWatcherOptions {
  /** A connection of its own: a subscribed connection can do nothing else. */
  subscriber: Redis;
  /** For the poll. */
  redis: Redis;
  redisPrefix: string;
  /** Re-read the pointer this often, in case an announcement was missed (a reconnect, a failover). @default 15000 */
  pollMs?: number;
  /** A version appeared in the pointer (called once per version per process, also for those present at start). */
  onVersion: (version: string) => void;
  /** A tenant's policy changed. */
  onPolicy?: (tenant: string) => void;
  onError?: (err: Error) => void;
}

/**
 * Watches the registry pointer: pub/sub for promptness, a poll as the fallback that makes a lost
 * message only late, never missed. Resolves after the first read of the pointer.
 */
export async function watchRegistry(o: RegistryWatcherOptions): Promise<{ close(): Promise<void> }> {
  const keys = registryRedisKeys(o.redisPrefix);
  const seen = new Set<string>();
  const poll = async () => {
    for (const version of await o.redis.hkeys(keys.versions())) {
      if (seen.has(version)) continue;
      seen.add(version);
      o.onVersion(version);
    }
  };
  const pollSafely = () => poll().catch((err: Error) => o.onError?.(err));
  o.subscriber.on("message", (channel: string, message: string) => {
    if (channel !== keys.changes()) return;
    let change: RegistryChange;
    try {
      change = JSON.parse(message) as RegistryChange;
    } catch {
      return;
    }
    if (change.kind === "policy") o.onPolicy?.(change.tenant);
    else void pollSafely();
  });
  await o.subscriber.subscribe(keys.changes());
  await poll();
  const timer = setInterval(pollSafely, o.pollMs ?? 15_000);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      await o.subscriber.quit().catch(() => undefined);
    },
  };
}
