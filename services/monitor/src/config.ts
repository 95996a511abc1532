/** The monitor's configuration, parsed in main with loadConfig. */
import { baseConfigSchema, env } from "@rebeca/platform";
import { storageConfigSchema } from "@rebeca/storage";
import { registryConfigSchema } from "@rebeca/registry";
import { z } from "zod";

// With MODEL_CACHE_DIR set (registryConfigSchema), versions only in the registry are fetched, verified, to be scored too.
export const monitorConfigSchema = baseConfigSchema.merge(storageConfigSchema.merge(registryConfigSchema)).extend({
  /** Directory of model versions (`<dir>/<version>/decoder` holds the image encoder, `<version>/world` the verifiers). */
  MODELS_DIR: env.str("models"),
  /** The embedded version whose `world/` (verifiers) judges versions that ship none: registry versions publish no world. */
  MONITOR_WORLD_VERSION: env.str("demo-v1"),
  /** Share of served users (single jobs and batch users) whose images are scored, 0..1; the choice is a hash of the job or batch position, so replicas agree. */
  MONITOR_SAMPLE_RATE: env.num(0.01).pipe(z.number().min(0).max(1)),
  /** Other users each sampled image is also scored for (the "others" baseline of the effect). */
  MONITOR_REFERENCE_USERS: env.int(16).pipe(z.number().int().min(1).max(1000)),
  /** Sampled users scored at once; more are dropped (counted) rather than queued, so a burst cannot grow memory. */
  MONITOR_MAX_IN_FLIGHT: env.int(4).pipe(z.number().int().min(1)),
  /** Consumer group on every tenant's event stream; all monitor replicas join the same group. */
  MONITOR_GROUP: env.str("monitor"),
  /** This replica's consumer name; empty means `<hostname>-<pid>`. */
  MONITOR_CONSUMER: env.str(""),
  /** XREADGROUP block time, ms; also bounds how long stopping takes. */
  MONITOR_BLOCK_MS: env.int(1000).pipe(z.number().int().min(1)),
  /** How often the tenant set is re-read for new tenants, ms. */
  MONITOR_TENANT_REFRESH_MS: env.int(10000).pipe(z.number().int().min(100)),
  /** Pause between retention sweeps (deleting outputs past their output_ttl), ms; 0 = this replica does not sweep. */
  RETENTION_SWEEP_INTERVAL_MS: env.int(60_000).pipe(z.number().int().min(0)),
  /** Jobs and batches one retention sweep handles at most (each: one listing of its prefix, one delete per 1,000 keys). */
  RETENTION_SWEEP_MAX_OWNERS: env.int(100).pipe(z.number().int().min(1)),
  /** Pause between deadline sweeps (ending EXPIRED the work past its deadline that still waits in a queue), ms; 0 = this replica does not sweep. */
  DEADLINE_SWEEP_INTERVAL_MS: env.int(1000).pipe(z.number().int().min(0)),
  /** Jobs and batches one deadline sweep handles at most (a job: two queue lookups; a batch: two per unfinished shard). */
  DEADLINE_SWEEP_MAX_ITEMS: env.int(200).pipe(z.number().int().min(1)),
  /** When due work a worker holds (it stops it at the deadline itself) is looked at again, ms. */
  DEADLINE_RECHECK_MS: env.int(30_000).pipe(z.number().int().min(100)),
  /** Roll back a tenant's canary by itself when it serves worse than the stable version (docs/operations.md#model-rollout). */
  MONITOR_CANARY_ROLLBACK: env.bool(true),
  /** How far back the canary evidence reaches, seconds: both arms' sampled users and finished jobs within it are compared. */
  MONITOR_CANARY_WINDOW_SECONDS: env.int(3600).pipe(z.number().int().min(1)),
  /** Sampled users each arm needs before personalization is compared. */
  MONITOR_CANARY_MIN_USERS: env.int(30).pipe(z.number().int().min(2)),
  /** Finished jobs each arm needs before error rates are compared. */
  MONITOR_CANARY_MIN_JOBS: env.int(100).pipe(z.number().int().min(1)),
  /** One-sided z of "worse beyond noise" (2.33: 1 % false rollbacks of an equal candidate per check). */
  MONITOR_CANARY_Z: env.num(2.33).pipe(z.number().positive()),
  /** Promote a canary that has run this long (seconds since its policy changed) with MONITOR_CANARY_MIN_USERS users per arm and no verdict against it; 0 = never (promote by hand). */
  MONITOR_CANARY_PROMOTE_AFTER_SECONDS: env.int(0).pipe(z.number().int().min(0)),
  /** Callback URL per tenant for `model.rolled_back`, JSON `{"acme": "https://..."}` (signed like job callbacks, sent by the notifier). */
  MONITOR_ROLLBACK_CALLBACKS: env.str("{}"),
});

export type MonitorConfig = z.infer<typeof monitorConfigSchema>;

/** The monitor's settings from its config (what createMonitor reads besides its connections and parts). */
export function monitorSettingsOf(config: MonitorConfig) {
  return {
    prefix: config.QUEUE_PREFIX,
    sampleRate: config.MONITOR_SAMPLE_RATE,
    maxInFlight: config.MONITOR_MAX_IN_FLIGHT,
    group: config.MONITOR_GROUP,
    consumer: config.MONITOR_CONSUMER,
    blockMs: config.MONITOR_BLOCK_MS,
    tenantRefreshMs: config.MONITOR_TENANT_REFRESH_MS,
  };
}

/** The canary watch's judging settings from config. */
export function canarySettingsOf(config: MonitorConfig) {
  return {
    windowMs: config.MONITOR_CANARY_WINDOW_SECONDS * 1000,
    promoteAfterMs: config.MONITOR_CANARY_PROMOTE_AFTER_SECONDS * 1000,
    refreshMs: Math.min(5000, config.MONITOR_TENANT_REFRESH_MS),
    judge: { minUsers: config.MONITOR_CANARY_MIN_USERS, minJobs: config.MONITOR_CANARY_MIN_JOBS, z: config.MONITOR_CANARY_Z },
    callbacks: z.record(z.string(), z.url()).parse(JSON.parse(config.MONITOR_ROLLBACK_CALLBACKS)),
  };
}
