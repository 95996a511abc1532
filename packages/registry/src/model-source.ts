import { access, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Redis } from "ioredis";
import type { BlobStore } from "@rebeca/storage";
import { MODEL_EVENTS, recordModelEvent } from "./events.js";
import { checkFile, parseRegistryIndex, RegistryIntegrityError, sha256Hex } from "./index-file.js";
import { assertVersionName, registryObjectKeys, registryRedisKeys, type PublishedVersion } from "./layout.js";

/** The version is neither embedded nor published. */
export class VersionNotPublishedError extends Error {
  constructor(readonly version: string) {
    super(`model version ${version} is neither embedded nor published in the registry`);
    this.name = "VersionNotPublishedError";
  }
}

export interface ModelSourceOptions {
  /** The embedded models (`MODELS_DIR`): served as they are, never fetched. */
  embeddedDir: string;
  /** Where fetched versions are kept, one verified directory per version (`MODEL_CACHE_DIR`). */
  cacheDir: string;
  blobs: BlobStore;
  redis: Redis;
  objectPrefix: string;
  redisPrefix: string;
  /** Who is fetching (`gateway`, `prior-worker`, …), for the audit trail. */
  service: string;
  /** A version was refused (for the refusal metric and the log). */
  onRefused?: (version: string, reason: string) => void;
  /** A version was fetched and verified (for the log and the fetch-time metric). */
  onFetched?: (version: string, seconds: number) => void;
}

/** Marker written last into a fetched version's directory: every file in it was verified. */
export const VERIFIED = ".verified";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** Where a service finds a version's files: the embedded directory or the registry (fetched once). */
export interface ModelSource {
  /**
   * The directory holding `<version>/` with every file verified: the embedded models for an
   * embedded version; otherwise the cache, fetching the version from the registry first (its index
   * must match the pointer's sha256, every file its index entry). Concurrent calls share one fetch.
   * @throws RegistryIntegrityError for a refused version (recorded once as `model.refused`);
   *   VersionNotPublishedError for a name nobody published.
   */
  ensure(version: string): Promise<string>;
  /** Versions refused by this process, with why. */
  readonly refused: ReadonlyMap<string, string>;
  /** When this process last asked for each version (ms since epoch): what cache pruning keeps. */
  readonly usedAt: ReadonlyMap<string, number>;
}

export function createModelSource(o: ModelSourceOptions): ModelSource {
  const inflight = new Map<string, Promise<string>>();
  const refused = new Map<string, string>();
  const usedAt = new Map<string, number>();
  const keys = registryObjectKeys(o.objectPrefix);

  async function fetchVersion(version: string): Promise<string> {
    const started = performance.now();
    const pointer = await o.redis.hget(registryRedisKeys(o.redisPrefix).versions(), version);
    if (!pointer) throw new VersionNotPublishedError(version);
    const published = JSON.parse(pointer) as PublishedVersion;
    const indexBytes = await o.blobs.get(keys.index(version));
    if (sha256Hex(indexBytes) !== published.indexSha256)
      throw new RegistryIntegrityError(version, "registry.json does not match the sha256 the registry pointer gives it");
    const index = parseRegistryIndex(version, indexBytes);
    // Into a directory of its own, renamed into place only once every file is verified: a
    // half-fetched or corrupt version is never found by another call or process.
    const staging = join(o.cacheDir, `.staging-${version}-${process.pid}-${Date.now()}`);
    await rm(staging, { recursive: true, force: true });
    try {
      for (const entry of index.files) {
        const bytes = await o.blobs.get(keys.file(version, entry.path));
        checkFile(version, entry, bytes);
        const file = join(staging, version, entry.path);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, bytes);
      }
      await writeFile(join(staging, version, VERIFIED), published.indexSha256);
      const target = join(o.cacheDir, version);
      // Another process sharing the cache may have finished first; its copy is as good as ours.
      if (!(await exists(join(target, VERIFIED)))) {
        await rm(target, { recursive: true, force: true });
        await rename(join(staging, version), target);
      }
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    o.onFetched?.(version, (performance.now() - started) / 1000);
    return o.cacheDir;
  }

  async function resolve(version: string): Promise<string> {
    assertVersionName(version);
    if (await exists(join(o.embeddedDir, version, "manifest.json"))) return o.embeddedDir;
    if (await exists(join(o.cacheDir, version, VERIFIED))) return o.cacheDir;
    const why = refused.get(version);
    if (why !== undefined) throw new RegistryIntegrityError(version, why);
    try {
      return await fetchVersion(version);
    } catch (err) {
      if (err instanceof RegistryIntegrityError) {
        refused.set(version, err.reason);
        o.onRefused?.(version, err.reason);
        await recordModelEvent(o.redis, o.redisPrefix, {
          type: MODEL_EVENTS.refused,
          version,
          tenant: "",
          actor: o.service,
          reason: err.reason,
          detail: "{}",
        }).catch(() => undefined);
      }
      throw err;
    }
  }

  return {
    refused,
    usedAt,
    ensure(version) {
      usedAt.set(version, Date.now());
      let p = inflight.get(version);
      if (!p) {
        p = resolve(version).finally(() => inflight.delete(version));
        inflight.set(version, p);
      }
      return p;
    },
  };
}
