import { describe, expect, it } from "vitest";
import { Registry } from "@rebeca/platform";
import type { TrafficPolicy } from "@rebeca/registry";
import { createModelRouter } from "./model-routing.js";

const policy = (p: Partial<TrafficPolicy>): TrafficPolicy => ({ stable: "v1", candidate: "", candidateWeight: 0, updatedAt: "", reason: "", ...p });

describe("createModelRouter", () => {
  it("sends a job to the candidate by the user's hash, a batch to stable, and counts each job by version and arm", async () => {
    const registry = new Registry();
    const route = createModelRouter({
      policies: { get: async () => policy({ candidate: "v2", candidateWeight: 50 }) },
      models: new Map([
        ["v1", {}],
        ["v2", {}],
      ]),
      registry,
    });
    const versions = await Promise.all(Array.from({ length: 200 }, (_, i) => route("acme", `u${i}`)));
    const toCandidate = versions.filter((v) => v === "v2").length;
    expect(toCandidate).toBeGreaterThan(70);
    expect(toCandidate).toBeLessThan(130);
    expect(await Promise.all(Array.from({ length: 200 }, (_, i) => route("acme", `u${i}`)))).toEqual(versions);
    expect(await route("acme", null)).toBe("v1");
    const metric = await registry.getSingleMetricAsString("rebeca_gateway_model_routed_total");
    expect(metric).toContain(`rebeca_gateway_model_routed_total{version="v2",arm="candidate"} ${toCandidate * 2}`);
    expect(metric).toContain(`rebeca_gateway_model_routed_total{version="v1",arm="stable"} ${(200 - toCandidate) * 2}`);
  });

  it("sends everyone to stable while the gateway cannot serve the candidate (refused or not fetched yet)", async () => {
    const route = createModelRouter({
      policies: { get: async () => policy({ candidate: "v2", candidateWeight: 100 }) },
      models: new Map([["v1", {}]]),
      registry: new Registry(),
    });
    expect(new Set(await Promise.all(Array.from({ length: 50 }, (_, i) => route("acme", `u${i}`))))).toEqual(new Set(["v1"]));
  });
});
