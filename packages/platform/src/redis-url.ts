import type { RedisOptions } from "ioredis";

/**
 * Connection options from a Redis URL, one form per deployment:
 * - `redis://[user:password@]host:port[/db]`: one node;
 * - `rediss://…`: the same over TLS (managed Redis; trust a private CA with `NODE_EXTRA_CA_CERTS`);
 * - `redis+sentinel://[user:password@]host:port[,host:port…]/<master name>[/db][?sentinelPassword=…]`:
 *   the primary that Redis Sentinel names, followed across failovers;
 * - `rediss+sentinel://…`: the same with TLS to the sentinels and the nodes.
 * Plain URLs are left to ioredis (`url`); sentinel URLs become `options`.
 */
export function redisTargetOf(url: string): { url?: string; options: RedisOptions } {
  const m = /^(rediss?)\+sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]+)\/([^/?]+)(?:\/(\d+))?\/?(?:\?(.*))?$/.exec(url);
  if (!m) {
    if (!/^rediss?:\/\//.test(url))
      throw new Error(`REDIS_URL must start with redis://, rediss://, redis+sentinel:// or rediss+sentinel:// (got ${redact(url)})`);
    return { url, options: {} };
  }
  const [, scheme, user, password, hosts, name, db, query] = m;
  const sentinels = hosts!.split(",").map((hp) => {
    const at = hp.lastIndexOf(":");
    const port = at > 0 ? Number(hp.slice(at + 1)) : 26379;
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad sentinel address ${JSON.stringify(hp)} in REDIS_URL`);
    return { host: at > 0 ? hp.slice(0, at) : hp, port };
  });
  const params = new URLSearchParams(query ?? "");
  const tls = scheme === "rediss";
  return {
    options: {
      sentinels,
      name: decodeURIComponent(name!),
      ...(user ? { username: decodeURIComponent(user) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
      ...(params.get("sentinelPassword") ? { sentinelPassword: params.get("sentinelPassword")! } : {}),
      db: db ? Number(db) : 0,
      // No `failoverDetector`: its disconnect on +switch-master races the reconnect of a connection
      // the dead primary already closed and leaves it ended (seen in the failover fault test). A
      // dead primary closes connections anyway, and a demoted live one answers READONLY, on which
      // `createRedis` reconnects through the sentinels.
      ...(tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    },
  };
}

/** The URL with its password replaced, for error messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}
