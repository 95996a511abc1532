import { createHash } from "node:crypto";
import { z } from "zod";

/** A tenant's traffic policy: the stable version, and a candidate that gets `candidateWeight`% of users. */
export const trafficPolicySchema = z.object({
  stable: z.string().min(1),
  candidate: z.string(),
  /** Percent of users (0–100) routed to the candidate. */
  candidateWeight: z.number().min(0).max(100),
  updatedAt: z.string(),
  /** Why it last changed (a person's note, or the monitor's rollback reason). */
  reason: z.string(),
});
export type TrafficPolicy = z.infer<typeof trafficPolicySchema>;

/** Hash buckets per policy; a weight resolves to 0.01 % of users. */
const BUCKETS = 10_000;

/**
 * The user's bucket in [0, 10000): a stable hash of (tenant, user), so a user stays on one arm for
 * as long as the weight does not move past their bucket, and raising the weight only adds users.
 */
export function userBucket(tenant: string, userId: string): number {
  const digest = createHash("sha256").update(`${tenant.length}:${tenant}|${userId}`).digest();
  return digest.readUInt32BE(0) % BUCKETS;
}

/** Which arm serves a request that names no version. */
export interface Routed {
  version: string;
  arm: "stable" | "candidate";
}

/**
 * The version a request without `model_version` gets under `policy`. `servable` says whether a
 * version can be served here now: a candidate that is not (refused, not yet fetched) sends its
 * users to the stable version instead of failing them.
 */
export function routeVersion(
  policy: Pick<TrafficPolicy, "stable" | "candidate" | "candidateWeight">,
  tenant: string,
  userId: string,
  servable: (v: string) => boolean,
): Routed {
  if (policy.candidate && policy.candidateWeight > 0 && servable(policy.candidate)) {
    if (userBucket(tenant, userId) < Math.round(policy.candidateWeight * (BUCKETS / 100))) return { version: policy.candidate, arm: "candidate" };
  }
  return { version: policy.stable, arm: "stable" };
}
