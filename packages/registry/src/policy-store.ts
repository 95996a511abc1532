import type { Redis } from "ioredis";
import { MODEL_EVENTS, writeWithModelEvent, type ModelEventType } from "./events.js";
import { assertVersionName, registryRedisKeys } from "./layout.js";
import { trafficPolicySchema, type TrafficPolicy } from "./policy.js";

/** A policy change that cannot be made as asked. */
export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyError";
  }
}

export interface PolicyStoreOptions {
  redis: Redis;
  redisPrefix: string;
  /** The stable version of a tenant that has no policy yet (the deployment's `DEFAULT_MODEL_VERSION`). */
  defaultStable: string;
}

/** A requested change: from the policy as it is to the one wanted, or a refusal. */
type Change = (current: TrafficPolicy) => { next: Omit<TrafficPolicy, "updatedAt" | "reason">; event: ModelEventType; version: string } | null;

/** Tenants' traffic policies in Redis; every change is announced and recorded as a `model.*` event. */
export function createPolicyStore(o: PolicyStoreOptions) {
  const keys = registryRedisKeys(o.redisPrefix);
  const initial = (): TrafficPolicy => ({ stable: o.defaultStable, candidate: "", candidateWeight: 0, updatedAt: "", reason: "default" });

  async function readRaw(tenant: string): Promise<{ raw: string; policy: TrafficPolicy }> {
    const raw = (await o.redis.hget(keys.policies(), tenant)) ?? "";
    return { raw, policy: raw ? trafficPolicySchema.parse(JSON.parse(raw)) : initial() };
  }

  /** Applies `change` atomically against concurrent changes (re-read and retried on a conflict). */
  async function apply(tenant: string, actor: string, reason: string, change: Change): Promise<{ policy: TrafficPolicy; changed: boolean }> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const { raw, policy } = await readRaw(tenant);
      const wanted = change(policy);
      if (!wanted) return { policy, changed: false };
      const next: TrafficPolicy = { ...wanted.next, updatedAt: new Date().toISOString(), reason };
      // Compare-and-set on the stored JSON, with its event and announcement in the same step.
      const detail = JSON.stringify(next);
      const written = await writeWithModelEvent(
        o.redis,
        o.redisPrefix,
        { hash: keys.policies(), field: tenant, value: detail, expected: raw },
        { kind: "policy", tenant },
        { type: wanted.event, version: wanted.version, tenant, actor, reason, detail },
      );
      if (written === null) continue;
      return { policy: next, changed: true };
    }
    throw new PolicyError(`the policy of ${tenant} kept changing under this update; try again`);
  }

  return {
    /** The tenant's policy (the default one, stable = `defaultStable`, when none was set). */
    get: async (tenant: string) => (await readRaw(tenant)).policy,

    /** Every tenant that has a policy. */
    async all(): Promise<Map<string, TrafficPolicy>> {
      const out = new Map<string, TrafficPolicy>();
      for (const [tenant, raw] of Object.entries(await o.redis.hgetall(keys.policies()))) out.set(tenant, trafficPolicySchema.parse(JSON.parse(raw)));
      return out;
    },

    /** Sends `weight`% of the tenant's users to `candidate` (0 < weight ≤ 100). */
    canary(tenant: string, candidate: string, weight: number, actor: string, reason: string) {
      assertVersionName(candidate);
      if (!(weight > 0 && weight <= 100)) throw new PolicyError(`candidate weight must be in (0, 100], got ${weight}`);
      return apply(tenant, actor, reason, (p) => {
        if (p.stable === candidate) throw new PolicyError(`${candidate} is already the stable version of ${tenant}`);
        return { next: { stable: p.stable, candidate, candidateWeight: weight }, event: MODEL_EVENTS.canary, version: candidate };
      });
    },

    /** Makes the candidate the stable version (all users), or `version` directly when given. */
    promote(tenant: string, actor: string, reason: string, version?: string) {
      if (version) assertVersionName(version);
      return apply(tenant, actor, reason, (p) => {
        const target = version || p.candidate;
        if (!target) throw new PolicyError(`${tenant} has no candidate to promote`);
        return { next: { stable: target, candidate: "", candidateWeight: 0 }, event: MODEL_EVENTS.promoted, version: target };
      });
    },

    /**
     * Sends no user to the candidate any more (weight 0; the name stays for the record).
     * `expectedCandidate`, when given, makes it a no-op if the candidate has changed meanwhile (the
     * monitor must not roll back a newer canary on an older verdict).
     */
    rollback(tenant: string, actor: string, reason: string, expectedCandidate?: string) {
      return apply(tenant, actor, reason, (p) => {
        if (!p.candidate || p.candidateWeight === 0) return null;
        if (expectedCandidate !== undefined && p.candidate !== expectedCandidate) return null;
        return { next: { stable: p.stable, candidate: p.candidate, candidateWeight: 0 }, event: MODEL_EVENTS.rolledBack, version: p.candidate };
      });
    },
  };
}
export type PolicyStore = ReturnType<typeof createPolicyStore>;
