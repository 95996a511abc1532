/**
 * Automatic rollback of canaries: keeps, per tenant and model version, what the monitor saw of
 * served outputs within a sliding window (each sampled user's personalization lift, and finished
 * jobs with their failures), and once a tenant's candidate is worse than its stable version beyond
 * noise (canary-judge.ts) sets the candidate's weight to 0 through the policy store, which records
 * `model.rolled_back`. The owner is told (callback, alert log, metric). Optionally, a candidate that
 * has baked for `promoteAfterMs` with enough users and no verdict against it is promoted.
 */
import type { PolicyStore, TrafficPolicy } from "@rebeca/registry";
import { judgeCanary, type ArmWindow, type JudgeOptions, type Verdict } from "./canary-judge.js";

export interface CanaryWatchOptions {
  policies: Pick<PolicyStore, "all" | "rollback" | "promote">;
  /** How far back (ms) the evidence reaches. */
  windowMs: number;
  /** How often (ms) the tenants' policies are re-read. */
  refreshMs: number;
  judge: JudgeOptions;
  /** A canary was rolled back by this watch. */
  onRolledBack: (tenant: string, before: TrafficPolicy, verdict: Extract<Verdict, { rollback: true }>) => Promise<void>;
  /** Promote a candidate whose canary has run this long (ms since its policy last changed) with `judge.minUsers` sampled users and no verdict against it; 0 = never. */
  promoteAfterMs?: number;
  /** A canary was promoted by this watch. */
  onPromoted?: (tenant: string, before: TrafficPolicy) => void;
  now?: () => number;
}

interface Observed {
  lifts: { at: number; lift: number }[];
  jobs: { at: number; failed: boolean }[];
}

export function createCanaryWatch(o: CanaryWatchOptions) {
  const now = o.now ?? Date.now;
  const seen = new Map<string, Observed>(); // key: tenant \n version
  let policies = new Map<string, TrafficPolicy>();
  let policiesAt = -Infinity;
  const judging = new Set<string>();

  const slot = (tenant: string, version: string) => {
    const key = `${tenant}\n${version}`;
    let s = seen.get(key);
    if (!s) seen.set(key, (s = { lifts: [], jobs: [] }));
    return s;
  };

  function windowOf(tenant: string, version: string): ArmWindow {
    const s = slot(tenant, version);
    const since = now() - o.windowMs;
    s.lifts = s.lifts.filter((x) => x.at >= since);
    s.jobs = s.jobs.filter((x) => x.at >= since);
    return { lifts: s.lifts.map((x) => x.lift), jobs: s.jobs.length, failed: s.jobs.filter((x) => x.failed).length };
  }

  async function check(tenant: string): Promise<void> {
    if (now() - policiesAt >= o.refreshMs) {
      policies = await o.policies.all();
      policiesAt = now();
    }
    const policy = policies.get(tenant);
    if (!policy?.candidate || policy.candidateWeight === 0 || judging.has(tenant)) return;
    const candidate = windowOf(tenant, policy.candidate);
    const verdict = judgeCanary(windowOf(tenant, policy.stable), candidate, o.judge);
    if (!verdict.rollback) {
      const baked = o.promoteAfterMs && policy.updatedAt && now() - Date.parse(policy.updatedAt) >= o.promoteAfterMs;
      if (baked && candidate.lifts.length >= o.judge.minUsers) await promote(tenant, policy);
      return;
    }
    judging.add(tenant);
    try {
      const reason = `monitor: candidate ${policy.candidate} rolled back: ${verdict.reason}`;
      // Only this candidate: a newer canary set meanwhile is judged on its own evidence.
      const r = await o.policies.rollback(tenant, "monitor", reason, policy.candidate);
      policies.set(tenant, r.policy);
      seen.delete(`${tenant}\n${policy.candidate}`);
      if (r.changed) await o.onRolledBack(tenant, policy, verdict);
    } finally {
      judging.delete(tenant);
    }
  }

  async function promote(tenant: string, policy: TrafficPolicy): Promise<void> {
    judging.add(tenant);
    try {
      const reason = `monitor: candidate ${policy.candidate} promoted after a clean bake of ${Math.round(o.promoteAfterMs! / 1000)} s`;
      const r = await o.policies.promote(tenant, "monitor", reason, policy.candidate);
      policies.set(tenant, r.policy);
      if (r.changed) o.onPromoted?.(tenant, policy);
    } finally {
      judging.delete(tenant);
    }
  }

  return {
    /** A sampled user of `version` was scored: `own` for the user, `others` for reference users. */
    observeScores(tenant: string, version: string, own: readonly number[], others: readonly number[]): Promise<void> {
      if (own.length === 0 || others.length === 0) return Promise.resolve();
      const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
      slot(tenant, version).lifts.push({ at: now(), lift: mean(own) - mean(others) });
      return check(tenant);
    },
    /** A job of `version` finished (succeeded or failed). */
    observeJob(tenant: string, version: string, failed: boolean): Promise<void> {
      slot(tenant, version).jobs.push({ at: now(), failed });
      return check(tenant);
    },
  };
}
export type CanaryWatch = ReturnType<typeof createCanaryWatch>;
