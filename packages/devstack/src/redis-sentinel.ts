import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { freePort } from "./ports.js";
import { startProcess, type ManagedProcess } from "./process.js";
import { startRedis, type RedisServer } from "./redis.js";

export interface RedisSentinelSet {
  /** `redis+sentinel://127.0.0.1:<p1>,…/<master>`: what the services take as REDIS_URL. */
  url: string;
  masterName: string;
  /** The primary at start and its replica (AOF everysec, noeviction, like `startRedis`). */
  primary: RedisServer;
  replica: RedisServer;
  sentinels: { port: number; process: ManagedProcess }[];
  /** The primary's port as the sentinels report it now. */
  primaryPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A primary, one replica and three Redis Sentinels (quorum 2) on loopback: the smallest setup
 * in which Sentinel promotes the replica when the primary fails. `downAfterMs` is how long the
 * primary must be unreachable before the sentinels agree it is down (production: 5–30 s).
 */
export async function startRedisSentinel(opts: { masterName?: string; downAfterMs?: number; binary?: string } = {}): Promise<RedisSentinelSet> {
  const masterName = opts.masterName ?? "rebeca";
  const primary = await startRedis({ aof: true });
  const replica = await startRedis({ aof: true, args: ["--replicaof", "127.0.0.1", String(primary.port)] });
  const dir = await mkdtemp(join(tmpdir(), "rebeca-sentinel-"));
  const sentinels: RedisSentinelSet["sentinels"] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      // Sentinel rewrites its config file as it learns the topology, so each gets its own.
      const conf = join(dir, `sentinel-${i}.conf`);
      await writeFile(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${masterName} 10000`,
          `sentinel parallel-syncs ${masterName} 1`,
          "",
        ].join("\n"),
      );
      const p = startProcess(`redis-sentinel-${i}`, opts.binary ?? "redis-sentinel", [conf]);
      sentinels.push({ port, process: p });
      await p.waitFor((l) => (l.includes("+monitor master") ? true : undefined), 20_000);
    }
  } catch (err) {
    await Promise.all([...sentinels.map((s) => s.process.stop()), primary.stop(), replica.stop()]);
    throw err;
  }
  const set: RedisSentinelSet = {
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(",")}/${masterName}`,
    masterName,
    primary,
    replica,
    sentinels,
    async primaryPort() {
      for (const s of sentinels) {
        // redis-cli comes with redis-server (redis-tools).
        const out = await promisify(execFile)("redis-cli", ["-p", String(s.port), "SENTINEL", "get-master-addr-by-name", masterName]).catch(() => undefined);
        const port = Number(out?.stdout.trim().split("\n")[1]);
        if (port > 0) return port;
      }
      throw new Error("no sentinel answered get-master-addr-by-name");
    },
    async stop() {
      await Promise.all([...sentinels.map((s) => s.process.stop()), primary.stop(), replica.stop()]);
    },
  };
  return set;
}
