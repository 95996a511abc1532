/**
 * Console sign-in: an API key (sees its tenant's batches) or an admin key (every tenant and the
 * queue view). Keys are compared by sha256 in constant time over every entry; a session is a
 * random id in an HttpOnly, SameSite=Strict cookie, stored in Redis by its sha256 so any gateway
 * replica accepts it and a Redis dump does not hold usable session ids.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Redis } from "ioredis";

export type Principal = { role: "admin" } | { role: "tenant"; tenant: string };

export interface ConsoleKeys {
  /** Tenant API keys (sha256 hex). */
  apiKeys: { tenant: string; sha256: string }[];
  /** Admin keys (sha256 hex). */
  adminKeys: string[];
}

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** Resolves a presented key to a principal, or null. Touches every entry whatever matches. */
export function createKeyCheck(keys: ConsoleKeys) {
  const table = [
    ...keys.adminKeys.map((h) => ({ digest: Buffer.from(h, "hex"), principal: { role: "admin" } as Principal })),
    ...keys.apiKeys.map((k) => ({ digest: Buffer.from(k.sha256, "hex"), principal: { role: "tenant", tenant: k.tenant } as Principal })),
  ];
  for (const e of table) if (e.digest.length !== 32) throw new Error("console keys must be sha256 hex digests (64 characters)");
  return (key: string): Principal | null => {
    const d = digest(key);
    let found: Principal | null = null;
    for (const e of table) if (timingSafeEqual(e.digest, d) && !found) found = e.principal;
    return found;
  };
}

export interface SessionStore {
  create(p: Principal): Promise<string>;
  get(id: string): Promise<Principal | null>;
  destroy(id: string): Promise<void>;
}

export function createSessionStore(redis: Redis, prefix: string, ttlSeconds: number): SessionStore {
  const key = (id: string) => `${prefix}:console:session:${digest(id).toString("hex")}`;
  return {
    async create(p) {
      const id = randomBytes(32).toString("base64url");
      await redis.set(key(id), JSON.stringify(p), "EX", ttlSeconds);
      return id;
    },
    async get(id) {
      if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
      const v = await redis.get(key(id));
      return v ? (JSON.parse(v) as Principal) : null;
    },
    async destroy(id) {
      await redis.del(key(id));
    },
  };
}

/** The cookie value named `name` from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

export const canSee = (p: Principal, tenant: string) => p.role === "admin" || p.tenant === tenant;
