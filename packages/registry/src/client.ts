import { z } from "zod";
import type { Redis } from "ioredis";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { BlobStore } from "@rebeca/storage";
import { createAcceptedVersions, createCachePruner } from "./cache-pruner.js";
import { createModelSource, type ModelSource } from "./model-source.js";
import { createPolicyStore } from "./policy-store.js";
import { watchRegistry } from "./watcher.js";

/** The registry settings every service shares. */
export const registryConfigSchema = z.object({
  /** Where versions fetched from the registry are kept; empty = the registry is off and only MODELS_DIR is served. */
  MODEL_CACHE_DIR: z.string().default(""),
  /** Object-key prefix of the registry in S3_BUCKET (`<prefix>/models/<version>/…`). */
  REGISTRY_PREFIX: z.string().default("registry"),
  /** How often (ms) the registry pointer is re-read in case a change announcement was missed. */
  REGISTRY_POLL_MS: z.coerce.number().int().min(100).default(15_000),
  /** Most model versions a model thread keeps loaded (least recently used leave memory first; their files stay). */
  MODEL_MAX_LOADED: z.coerce.number().int().min(1).default(4),
  /** Bound on MODEL_CACHE_DIR, bytes: least recently used versions nothing protects are deleted past it (cache-pruner.ts). */
  MODEL_CACHE_MAX_BYTES: z.coerce.number().int().min(1).default(4_294_967_296),
  /** A version this process asked for within this many seconds is kept by pruning (it is being loaded or served). */
  MODEL_CACHE_KEEP_USED_SECONDS: z.coerce.number().int().min(0).default(3600),
});
export type RegistryConfig = z.infer<typeof registryConfigSchema>;

/** The registry's metrics, the same in every service (each registry adds its `service` label). */
export function createRegistryMetrics(registry: Registry) {
  return {
    refused: new Counter({
      name: "rebeca_model_refused_total",
      help: "Model versions refused because their registry index or a file did not match",
      labelNames: ["version"],
      registers: [registry],
    }),
    fetchSeconds: new Histogram({
      name: "rebeca_model_fetch_seconds",
      help: "Time to fetch and verify a model version from the registry",
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    available: new Gauge({
      name: "rebeca_model_versions_available",
      help: "Model versions this process can serve (embedded and fetched)",
      registers: [registry],
    }),
    cacheBytes: new Gauge({
      name: "rebeca_model_cache_bytes",
      help: "Bytes of verified model versions in MODEL_CACHE_DIR after the last pruning pass",
      registers: [registry],
    }),
    pruned: new Counter({
      name: "rebeca_model_cache_pruned_total",
      help: "Model versions deleted from MODEL_CACHE_DIR to keep it within MODEL_CACHE_MAX_BYTES",
      registers: [registry],
    }),
  };
}

/** What a service needs to fetch versions from the registry (see {@link createRegistrySource}). */
export interface RegistrySourceOptions {
  config: RegistryConfig & { MODELS_DIR: string; QUEUE_PREFIX: string; JOB_RETENTION_SECONDS: number };
  redis: Redis;
  blobs: BlobStore;
  service: string;
  metrics: Registry;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  /** Versions this process has loaded or may load from the cache at any time (its model threads' catalog); pruning keeps them. */
  inUse?: () => Iterable<string>;
}

/**
 * The model source every service fetches registry versions through (verified into
 * MODEL_CACHE_DIR), with the registry's refusal and fetch-time metrics and logs. Null when
 * MODEL_CACHE_DIR is empty (embedded models only).
 */
export function createRegistrySource(
  o: RegistrySourceOptions,
): { source: ModelSource; metrics: ReturnType<typeof createRegistryMetrics>; prune(): Promise<void> } | null {
  if (!o.config.MODEL_CACHE_DIR) return null;
  const metrics = createRegistryMetrics(o.metrics);
  const source = createModelSource({
    embeddedDir: o.config.MODELS_DIR,
    cacheDir: o.config.MODEL_CACHE_DIR,
    blobs: o.blobs,
    redis: o.redis,
    objectPrefix: o.config.REGISTRY_PREFIX,
    redisPrefix: o.config.QUEUE_PREFIX,
    service: o.service,
    onRefused: (version, reason) => {
      metrics.refused.inc({ version });
      o.log.warn({ version, reason }, "model version refused; the versions already loaded keep serving");
    },
    onFetched: (version, seconds) => {
      metrics.fetchSeconds.observe(seconds);
      o.log.info({ version, seconds }, "model version fetched from the registry and verified");
      // The cache grows only here, so this is where it is pruned.
      void pruner.prune().catch((err: Error) => o.log.warn({ err: err.message }, "model cache pruning failed"));
    },
  });
  const policies = createPolicyStore({ redis: o.redis, redisPrefix: o.config.QUEUE_PREFIX, defaultStable: "" });
  const accepted = createAcceptedVersions(o.redis, o.config.QUEUE_PREFIX);
  const pruner = createCachePruner({
    cacheDir: o.config.MODEL_CACHE_DIR,
    maxBytes: o.config.MODEL_CACHE_MAX_BYTES,
    usedAt: source.usedAt,
    async protectedVersions() {
      const keep = new Set<string>(o.inUse?.() ?? []);
      for (const [version, at] of source.usedAt) if (Date.now() - at < o.config.MODEL_CACHE_KEEP_USED_SECONDS * 1000) keep.add(version);
      for (const p of (await policies.all()).values()) for (const v of [p.stable, p.candidate]) if (v) keep.add(v);
      for (const v of await accepted.since(Date.now() - o.config.JOB_RETENTION_SECONDS * 1000)) keep.add(v);
      return keep;
    },
    onPruned: ({ bytes, deleted, protectedOver }) => {
      metrics.cacheBytes.set(bytes);
      metrics.pruned.inc(deleted.length);
      if (deleted.length) o.log.info({ deleted, bytes }, "model cache pruned");
      if (protectedOver)
        o.log.warn({ bytes, maxBytes: o.config.MODEL_CACHE_MAX_BYTES }, "model cache over its bound: every version in it is in use, pinned or queued");
    },
  });
  return { source, metrics, prune: () => pruner.prune() };
}

export interface RegistryClientOptions extends RegistrySourceOptions {
  /** Opens the watcher's own connection (a subscribed connection can do nothing else). */
  subscriber: () => Redis;
  /** Embedded versions this process serves at start (counted as available). */
  embedded: readonly string[];
  /** A newly published version was fetched and verified: load what the service needs of it (`dir/<version>/`). */
  onVersion?: (version: string, dir: string) => Promise<void> | void;
}

/**
 * A service's view of the registry: the model source that fetches and verifies versions on demand
 * (`ensure`), and a watcher that fetches each newly published version ahead of its first job. Null
 * when MODEL_CACHE_DIR is empty (embedded models only).
 */
export async function startRegistryClient(o: RegistryClientOptions): Promise<{ source: ModelSource; close(): Promise<void> } | null> {
  const created = createRegistrySource(o);
  if (!created) return null;
  const { source, metrics } = created;
  const available = new Set(o.embedded);
  metrics.available.set(available.size);
  const prefetch = async (version: string) => {
    try {
      const dir = await source.ensure(version);
      await o.onVersion?.(version, dir);
      available.add(version);
      metrics.available.set(available.size);
    } catch (err) {
      // Refusals are logged and counted by the source; anything else (S3 down) is retried on the
      // first job that needs the version.
      if (!source.refused.has(version)) o.log.warn({ version, err: (err as Error).message }, "model version not fetched yet");
    }
  };
  const watcher = await watchRegistry({
    subscriber: o.subscriber(),
    redis: o.redis,
    redisPrefix: o.config.QUEUE_PREFIX,
    pollMs: o.config.REGISTRY_POLL_MS,
    onVersion: (v) => void prefetch(v),
    onError: (err) => o.log.warn({ err: err.message }, "registry poll failed"),
  });
  return { source, close: () => watcher.close() };
}
