import { Counter, type Registry } from "@rebeca/platform";
import { routeVersion, type PolicyStore } from "@rebeca/registry";

/**
 * The version a request without `model_version` gets: the tenant's stable version, or for a job
 * its candidate when the user's stable hash falls within the candidate's weight and this gateway
 * can serve the candidate. Every routed job (and batch user) is counted by version and arm.
 */
export function createModelRouter(deps: { policies: Pick<PolicyStore, "get">; models: ReadonlyMap<string, unknown>; registry: Registry }) {
  const routed = new Counter({
    name: "rebeca_gateway_model_routed_total",
    help: "Jobs and batch users without a model_version routed by the tenant's traffic policy, by version and arm (stable, candidate)",
    labelNames: ["version", "arm"],
    registers: [deps.registry],
  });
  const route = async (tenant: string, userId: string | null): Promise<string> => {
    const policy = await deps.policies.get(tenant);
    if (userId === null) return policy.stable;
    const r = routeVersion(policy, tenant, userId, (v) => deps.models.has(v));
    routed.inc({ version: r.version, arm: r.arm });
    return r.version;
  };
  return Object.assign(route, {
    /** The canary a batch accepted now without a model_version follows, if the tenant runs one this gateway can serve. */
    async canaryOf(tenant: string): Promise<{ version: string; weight: number } | undefined> {
      const p = await deps.policies.get(tenant);
      return p.candidate && p.candidateWeight > 0 && deps.models.has(p.candidate) ? { version: p.candidate, weight: p.candidateWeight } : undefined;
    },
    /** Counts `n` batch users routed to `version` (batch-routing.ts). */
    countRouted(version: string, arm: "stable" | "candidate", n: number): void {
      if (n > 0) routed.inc({ version, arm }, n);
    },
  });
}
export type ModelRouter = ReturnType<typeof createModelRouter>;
