/**
 * The personalization monitor: reads every tenant's event stream in one consumer group, picks a
 * sample of served users (single jobs and users of completed batches), scores their images and
 * exports the scores per model version. Best effort by design: an event is acknowledged once its
 * work is dispatched, and samples beyond MONITOR_MAX_IN_FLIGHT are dropped and counted — the
 * monitor never slows or backs up serving.
 */
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { objectKeys, redisKeys, type UserResult } from "@rebeca/contracts";
import { Counter, Histogram, type Logger, type Registry } from "@rebeca/platform";
import { BlobNotFoundError } from "@rebeca/storage";
import { tasksFromResults, workFromEvent, type ScoreTask } from "./sampling.js";
import { SkipError, type Scorer } from "./scorer.js";

export interface MonitorOptions {
  redis: Redis;
  /** A connection of its own: XREADGROUP BLOCK holds it. */
  blockingRedis: Redis;
  prefix: string;
  scorer: Scorer;
  /** Reads an object by key (shard results). */
  readKey: (key: string) => Promise<Uint8Array>;
  registry: Registry;
  log: Logger;
  sampleRate: number;
  maxInFlight: number;
  group: string;
  consumer?: string;
  blockMs: number;
  tenantRefreshMs: number;
  /** A sampled user was scored (for the canary watch). */
  onScored?: (task: ScoreTask, own: readonly number[], others: readonly number[]) => Promise<void>;
  /** Every event read, before it is sampled (for the canary watch's error rates). */
  onEvent?: (tenant: string, fields: Record<string, string>) => Promise<void>;
}

type StreamReply = [string, [string, string[]][]][] | null;

export function createMonitor(o: MonitorOptions) {
  const keys = redisKeys(o.prefix);
  const consumer = o.consumer || `${hostname()}-${process.pid}`;
  const score = new Histogram({
    name: "rebeca_monitor_verifier_score",
    help: "Verifier P(like) of sampled served images: subject=own for the user they were made for, subject=others for the mean over reference users",
    labelNames: ["model_version", "verifier", "subject"],
    buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    registers: [o.registry],
  });
  const users = new Counter({
    name: "rebeca_monitor_users_scored_total",
    help: "Sampled served users scored, by model version",
    labelNames: ["model_version"],
    registers: [o.registry],
  });
  const skipped = new Counter({
    name: "rebeca_monitor_samples_skipped_total",
    help: "Sampled users not scored, by reason (overloaded, unknown_user, no_model, error)",
    labelNames: ["reason"],
    registers: [o.registry],
  });
  for (const reason of ["overloaded", "unknown_user", "no_model", "error"]) skipped.inc({ reason }, 0);

  const tenants = new Set<string>();
  let stopping = false;
  let loop: Promise<void> | undefined;
  let inFlight = 0;
  const running = new Set<Promise<void>>();

  async function refreshTenants(): Promise<void> {
    for (const t of await o.redis.smembers(keys.tenants())) {
      if (tenants.has(t)) continue;
      try {
        // "$": a new monitor scores what is served from now on, not the stream's history.
        await o.redis.xgroup("CREATE", keys.events(t), o.group, "$", "MKSTREAM");
      } catch (err) {
        if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
      }
      tenants.add(t);
    }
  }

  function dispatch(task: ScoreTask): void {
    if (inFlight >= o.maxInFlight) {
      skipped.inc({ reason: "overloaded" });
      return;
    }
    inFlight++;
    const p = (async () => {
      try {
        const s = await o.scorer.score(task);
        for (const v of s.own) score.observe({ model_version: task.modelVersion, verifier: s.verifier, subject: "own" }, v);
        for (const v of s.others) score.observe({ model_version: task.modelVersion, verifier: s.verifier, subject: "others" }, v);
        users.inc({ model_version: task.modelVersion });
        await o.onScored?.(task, s.own, s.others);
      } catch (err) {
        const reason = err instanceof SkipError ? err.reason : "error";
        skipped.inc({ reason });
        if (reason === "error") o.log.warn({ err: (err as Error).message, key: task.key, modelVersion: task.modelVersion }, "scoring a sample failed");
      } finally {
        inFlight--;
      }
    })();
    running.add(p);
    void p.finally(() => running.delete(p));
  }

  async function handle(tenant: string, fields: Record<string, string>): Promise<void> {
    const work = workFromEvent(tenant, fields, o.sampleRate);
    if ("tasks" in work) {
      for (const t of work.tasks) dispatch(t);
      return;
    }
    for (let shard = 0; shard < work.batch.shards && !stopping; shard++) {
      // A shard cancelled before it ran has no result: nothing of it was served.
      const bytes = await o.readKey(objectKeys.shardResult(work.batch.tenant, work.batch.batchId, shard)).catch((err: Error) => {
        if (err instanceof BlobNotFoundError) return null;
        throw err;
      });
      if (!bytes) continue;
      const text = new TextDecoder().decode(bytes);
      const lines = text
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as UserResult);
      for (const t of tasksFromResults(work.batch, lines, o.sampleRate)) dispatch(t);
    }
  }

  async function run(): Promise<void> {
    let lastRefresh = 0;
    while (!stopping) {
      try {
        if (Date.now() - lastRefresh >= o.tenantRefreshMs) {
          lastRefresh = Date.now();
          await refreshTenants();
        }
        if (tenants.size === 0) {
          await new Promise((r) => setTimeout(r, Math.min(o.blockMs, o.tenantRefreshMs)).unref());
          continue;
        }
        const streams = [...tenants].map((t) => keys.events(t));
        const res = (await o.blockingRedis.xreadgroup(
          "GROUP",
          o.group,
          consumer,
          "COUNT",
          100,
          "BLOCK",
          Math.min(o.blockMs, o.tenantRefreshMs),
          "STREAMS",
          ...streams,
          ...streams.map(() => ">"),
        )) as StreamReply;
        for (const [stream, entries] of res ?? []) {
          const tenant = [...tenants].find((t) => keys.events(t) === stream)!;
          for (const [id, flat] of entries) {
            const fields: Record<string, string> = {};
            for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
            await o.onEvent?.(tenant, fields).catch((err: Error) => o.log.warn({ err: err.message, tenant, eventId: id }, "canary watch failed"));
            await handle(tenant, fields).catch((err: Error) => {
              skipped.inc({ reason: "error" });
              o.log.warn({ err: err.message, tenant, eventId: id }, "reading a served batch failed");
            });
            await o.redis.xack(stream, o.group, id);
          }
        }
      } catch (err) {
        if (stopping) break;
        o.log.error({ err: (err as Error).message }, "monitor read failed; retrying");
        // A Redis restart without persistence loses the groups: create them again.
        if (String((err as Error).message).includes("NOGROUP")) tenants.clear();
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }

  return {
    async start(): Promise<void> {
      await refreshTenants();
      loop = run();
    },
    /** Stops reading and waits for samples being scored. */
    async stop(): Promise<void> {
      stopping = true;
      await loop;
      await Promise.all([...running]);
    },
  };
}
