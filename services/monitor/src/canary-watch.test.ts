import { describe, expect, it } from "vitest";
import type { TrafficPolicy } from "@rebeca/registry";
import { createCanaryWatch } from "./canary-watch.js";

/** A policy store holding one tenant's canary in memory (the real one is tested on Redis in @rebeca/registry). */
function memoryPolicies(policy: TrafficPolicy) {
  const calls: { tenant: string; expected?: string }[] = [];
  return {
    calls,
    policy,
    all: async () => new Map([["acme", policy]]),
    promote: async (_tenant: string, _actor: string, reason: string, version?: string) => {
      policy = { ...policy, stable: version ?? policy.candidate, candidate: "", candidateWeight: 0, reason };
      return { policy, changed: true };
    },
    rollback: async (tenant: string, _actor: string, reason: string, expected?: string) => {
      calls.push({ tenant, ...(expected !== undefined ? { expected } : {}) });
      policy = { ...policy, candidateWeight: 0, reason };
      return { policy, changed: true };
    },
  };
}

const canary: TrafficPolicy = { stable: "v1", candidate: "v2", candidateWeight: 10, updatedAt: "", reason: "" };

describe("createCanaryWatch", () => {
  it("rolls back a candidate that personalizes worse once both arms have enough users in the window, once", async () => {
    let t = 0;
    const policies = memoryPolicies(canary);
    const rolled: string[] = [];
    const watch = createCanaryWatch({
      policies,
      windowMs: 60_000,
      refreshMs: 1000,
      judge: { minUsers: 5, minJobs: 1000, z: 2.33 },
      onRolledBack: async (tenant, before, v) => void rolled.push(`${tenant} ${before.candidate} ${v.statistic}`),
      now: () => t,
    });
    for (let i = 0; i < 5; i++) await watch.observeScores("acme", "v1", [0.8 + i * 0.01], [0.2]);
    for (let i = 0; i < 4; i++) await watch.observeScores("acme", "v2", [0.3 + i * 0.01], [0.3]);
    expect(rolled).toEqual([]); // four candidate users: not yet
    await watch.observeScores("acme", "v2", [0.31], [0.3]);
    expect(rolled).toEqual(["acme v2 personalization"]);
    expect(policies.calls).toEqual([{ tenant: "acme", expected: "v2" }]);
    t += 2000; // the policy is re-read: weight 0 now, nothing more to judge
    await watch.observeScores("acme", "v2", [0.3], [0.3]);
    expect(rolled).toHaveLength(1);
  });

  it("forgets evidence older than the window", async () => {
    let t = 0;
    const rolled: string[] = [];
    const watch = createCanaryWatch({
      policies: memoryPolicies(canary),
      windowMs: 10_000,
      refreshMs: 1000,
      judge: { minUsers: 3, minJobs: 1000, z: 2.33 },
      onRolledBack: async (tenant) => void rolled.push(tenant),
      now: () => t,
    });
    for (let i = 0; i < 3; i++) await watch.observeScores("acme", "v1", [0.8 + i * 0.01], [0.2]);
    t += 20_000;
    for (let i = 0; i < 3; i++) await watch.observeScores("acme", "v2", [0.3 + i * 0.01], [0.3]);
    expect(rolled).toEqual([]); // the stable arm's users are outside the window
  });

  it("rolls back on a risen error rate", async () => {
    const rolled: string[] = [];
    const watch = createCanaryWatch({
      policies: memoryPolicies(canary),
      windowMs: 60_000,
      refreshMs: 1000,
      judge: { minUsers: 1000, minJobs: 20, z: 2.33 },
      onRolledBack: async (_t, _b, v) => void rolled.push(v.statistic),
    });
    for (let i = 0; i < 40; i++) await watch.observeJob("acme", "v1", false);
    for (let i = 0; i < 20; i++) await watch.observeJob("acme", "v2", i % 2 === 0);
    expect(rolled).toEqual(["error_rate"]);
  });

  it("promotes a candidate after a clean bake with enough users, not before, and never one that is worse", async () => {
    const t0 = Date.parse("2026-12-02T10:00:00Z");
    let t = t0;
    const promoted: string[] = [];
    const rolled: string[] = [];
    const watch = createCanaryWatch({
      policies: memoryPolicies({ ...canary, updatedAt: new Date(t0).toISOString() }),
      windowMs: 3_600_000,
      refreshMs: 1000,
      judge: { minUsers: 3, minJobs: 1000, z: 2.33 },
      promoteAfterMs: 600_000,
      onRolledBack: async (tenant) => void rolled.push(tenant),
      onPromoted: (tenant, before) => void promoted.push(`${tenant} ${before.candidate}`),
      now: () => t,
    });
    for (let i = 0; i < 3; i++) await watch.observeScores("acme", "v1", [0.8 + i * 0.01], [0.2]);
    for (let i = 0; i < 3; i++) await watch.observeScores("acme", "v2", [0.8 + i * 0.01], [0.2]);
    expect(promoted).toEqual([]); // equal, but not baked yet
    t = t0 + 600_000;
    await watch.observeScores("acme", "v2", [0.81], [0.2]);
    expect(promoted).toEqual(["acme v2"]);
    expect(rolled).toEqual([]);
  });
});
