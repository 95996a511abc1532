/** Endpoint state in Redis (`endpoint:<tenant>:<url>` hash): a 410 disables an endpoint for good. */
import { redisKeys } from "@rebeca/contracts";
import type { Redis } from "ioredis";

export interface EndpointState {
  disabled: boolean;
  reason?: string;
  time?: string;
}

/** Role: what the delivery processor needs to know and change about endpoints. */
export interface EndpointStore {
  get(tenant: string, url: string): Promise<EndpointState>;
  disable(tenant: string, url: string, reason: string): Promise<void>;
  enable(tenant: string, url: string): Promise<void>;
}

export function createEndpointStore(redis: Redis, prefix: string, now: () => Date = () => new Date()): EndpointStore {
  const keys = redisKeys(prefix);
  return {
    async get(tenant, url) {
      const h = await redis.hgetall(keys.endpoint(tenant, url));
      if (h.disabled !== "1") return { disabled: false };
      return { disabled: true, reason: h.reason ?? "", time: h.time ?? "" };
    },
    async disable(tenant, url, reason) {
      await redis.hset(keys.endpoint(tenant, url), { disabled: "1", reason, time: now().toISOString() });
    },
    async enable(tenant, url) {
      await redis.del(keys.endpoint(tenant, url));
    },
  };
}
