import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { startProcess, type ManagedProcess } from "./process.js";

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  process: ManagedProcess;
  /** Stops the server (SIGTERM: with AOF on, it fsyncs first). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory (restart scenarios). */
  restart(): Promise<void>;
}

/**
 * A real redis-server on a free loopback port, with the settings production uses: `noeviction`
 * (BullMQ must never lose keys) and, when asked, AOF with `appendfsync everysec`.
 */
export async function startRedis(
  opts: {
    aof?: boolean;
    binary?: string;
    /** More server arguments (e.g. `--replicaof`). */
    args?: string[];
    /** Serve TLS only, with these PEM files (clients unauthenticated); `url` is then `rediss://`. */
    tls?: { certFile: string; keyFile: string; caFile: string };
  } = {},
): Promise<RedisServer> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "rebeca-redis-"));
  const listen = opts.tls
    ? [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        opts.tls.certFile,
        "--tls-key-file",
        opts.tls.keyFile,
        "--tls-ca-cert-file",
        opts.tls.caFile,
        "--tls-auth-clients",
        "no",
      ]
    : ["--port", String(port)];
  const args = [
    ...listen,
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--maxmemory-policy",
    "noeviction",
    "--appendonly",
    opts.aof ? "yes" : "no",
    "--appendfsync",
    "everysec",
    ...(opts.args ?? []),
  ];
  const binary = opts.binary ?? "redis-server";
  const launch = async () => {
    const p = startProcess("redis-server", binary, args);
    await p.waitFor((l) => (l.includes("Ready to accept connections") ? true : undefined), 20_000);
    return p;
  };
  const server: RedisServer = {
    url: `${opts.tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
    port,
    dir,
    process: await launch(),
    async stop() {
      await server.process.stop();
    },
    async restart() {
      await server.process.stop();
      server.process = await launch();
    },
  };
  return server;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
