/**
 * Keeps MODEL_CACHE_DIR within MODEL_CACHE_MAX_BYTES. The watcher fetches every published version
 * ahead of its first job, so without a bound a pod's cache grows by one version a night. Pruning
 * deletes the least recently used verified versions until the cache fits, but never one that is
 * protected: used by this process lately (so it is, or may soon again be, loaded by a model
 * thread), pinned by a tenant's policy (stable or candidate), or named by work a gateway accepted
 * within the job retention (queued work cannot be older than its record). A protected cache over
 * the bound stays over it and says so (log, metric): correctness before the bound. A pruned
 * version is fetched and verified again by its next use.
 */
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { registryRedisKeys } from "./layout.js";
import { VERIFIED } from "./model-source.js";

/** One verified version in the cache. */
export interface CacheEntry {
  version: string;
  bytes: number;
  /** Last use (ms since epoch): this process's last ensure, else when it was fetched. */
  usedAt: number;
}

/** The versions to delete, least recently used first, so that the rest fit in `maxBytes` (pure). */
export function planPrune(entries: readonly CacheEntry[], protectedVersions: ReadonlySet<string>, maxBytes: number): string[] {
  let total = entries.reduce((s, e) => s + e.bytes, 0);
  const out: string[] = [];
  for (const e of [...entries].sort((a, b) => a.usedAt - b.usedAt)) {
    if (total <= maxBytes) break;
    if (protectedVersions.has(e.version)) continue;
    out.push(e.version);
    total -= e.bytes;
  }
  return out;
}

async function sizeOf(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.size;
  let n = 0;
  for (const name of await readdir(path)) n += await sizeOf(join(path, name));
  return n;
}

/** The verified versions in `cacheDir` (staging directories and half-fetched ones are not versions yet). */
export async function listCache(cacheDir: string, usedAt: ReadonlyMap<string, number>): Promise<CacheEntry[]> {
  const out: CacheEntry[] = [];
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (name.startsWith(".")) continue;
    const marker = await stat(join(cacheDir, name, VERIFIED)).catch(() => null);
    if (!marker) continue;
    out.push({ version: name, bytes: await sizeOf(join(cacheDir, name)), usedAt: usedAt.get(name) ?? marker.mtimeMs });
  }
  return out;
}

/**
 * Versions named by work gateways accepted, with when (Redis hash `<prefix>:models:accepted`).
 * `note` costs a map lookup per request: each version's time is written at most once a minute,
 * far finer than the retention it is compared with.
 */
export function createAcceptedVersions(redis: Redis, redisPrefix: string, now: () => number = Date.now) {
  const key = registryRedisKeys(redisPrefix).accepted();
  const written = new Map<string, number>();
  return {
    note(version: string): void {
      const t = now();
      if (t - (written.get(version) ?? -Infinity) < 60_000) return;
      written.set(version, t);
      redis.hset(key, version, String(t)).catch(() => written.delete(version));
    },
    /** Versions accepted at or after `sinceMs`. */
    async since(sinceMs: number): Promise<string[]> {
      const all = await redis.hgetall(key);
      return Object.entries(all)
        .filter(([, t]) => Number(t) >= sinceMs - 60_000)
        .map(([v]) => v);
    },
  };
}

export interface CachePrunerOptions {
  cacheDir: string;
  maxBytes: number;
  /** Every version that must stay (see the module comment). */
  protectedVersions: () => Promise<ReadonlySet<string>>;
  /** This process's last use of each version. */
  usedAt: ReadonlyMap<string, number>;
  /** After each pass: the cache's bytes, and what was deleted. */
  onPruned?: (r: { bytes: number; deleted: string[]; protectedOver: boolean }) => void;
}

/** One pruning pass at a time; a pass asked for while one runs is merged into the next. */
export function createCachePruner(o: CachePrunerOptions) {
  let running: Promise<void> | null = null;
  let again = false;
  async function pass(): Promise<void> {
    const entries = await listCache(o.cacheDir, o.usedAt);
    const keep = await o.protectedVersions();
    const deleted = planPrune(entries, keep, o.maxBytes);
    for (const v of deleted) await rm(join(o.cacheDir, v), { recursive: true, force: true });
    const bytes = entries.filter((e) => !deleted.includes(e.version)).reduce((s, e) => s + e.bytes, 0);
    o.onPruned?.({ bytes, deleted, protectedOver: bytes > o.maxBytes });
  }
  return {
    prune(): Promise<void> {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        try {
          do {
            again = false;
            await pass();
          } while (again);
        } finally {
          running = null;
        }
      })();
      return running;
    },
  };
}
