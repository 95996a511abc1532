import { describe, expect, it } from "vitest";
import { redact, redisTargetOf } from "./redis-url.js";

describe("redisTargetOf", () => {
  it("leaves one-node URLs (plain and TLS) to ioredis", () => {
    expect(redisTargetOf("redis://127.0.0.1:6379/2")).toEqual({ url: "redis://127.0.0.1:6379/2", options: {} });
    expect(redisTargetOf("rediss://:pw@cache.example.com:6380")).toEqual({ url: "rediss://:pw@cache.example.com:6380", options: {} });
  });

  it("reads sentinels, master name, credentials and db from a sentinel URL", () => {
    const { url, options } = redisTargetOf("redis+sentinel://app:p%40ss@s1:26379,s2:26380,s3/rebeca-main/3?sentinelPassword=sp");
    expect(url).toBeUndefined();
    expect(options).toEqual({
      sentinels: [
        { host: "s1", port: 26379 },
        { host: "s2", port: 26380 },
        { host: "s3", port: 26379 },
      ],
      name: "rebeca-main",
      username: "app",
      password: "p@ss",
      sentinelPassword: "sp",
      db: 3,
    });
  });

  it("turns on TLS to sentinels and nodes for rediss+sentinel", () => {
    const { options } = redisTargetOf("rediss+sentinel://:secret@10.0.0.1:26379/mymaster");
    expect(options).toMatchObject({ name: "mymaster", password: "secret", db: 0, tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true });
    expect(options.username).toBeUndefined();
  });

  it("refuses other schemes and bad sentinel ports with a clear error that hides the password", () => {
    expect(() => redisTargetOf("http://user:hunter2@host:6379")).toThrow(/must start with redis:\/\/.*http:\/\/user:\*\*\*@host/);
    expect(() => redisTargetOf("redis+sentinel://s1:99999/m")).toThrow('bad sentinel address "s1:99999"');
  });

  it("redacts passwords", () => {
    expect(redact("rediss://default:abc@h:6380")).toBe("rediss://default:***@h:6380");
    expect(redact("redis://h:6379")).toBe("redis://h:6379");
  });
});
