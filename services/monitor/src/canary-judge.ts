/**
 * Whether a canary is worse than the stable version, on what the monitor measures of served
 * outputs: per sampled user, the personalization lift (mean verifier P(like) for the user minus
 * for reference users, the statistic of rebeca_monitor_verifier_score), and the share of jobs that
 * failed. One-sided: only "worse beyond noise" counts; a better or equal candidate passes.
 */

/** What one arm (a version of a tenant) served within the window. */
export interface ArmWindow {
  /** Personalization lift of each sampled user. */
  lifts: readonly number[];
  /** Jobs finished, and how many of them failed. */
  jobs: number;
  failed: number;
}

export interface JudgeOptions {
  /** Sampled users each arm needs before personalization is judged. */
  minUsers: number;
  /** Finished jobs each arm needs before the error rate is judged. */
  minJobs: number;
  /** One-sided z: 2.33 ≈ 1 % false rollbacks of an equal candidate per check. */
  z: number;
}

export type Verdict =
  | { rollback: false; reason: string }
  | { rollback: true; reason: string; statistic: "personalization" | "error_rate"; candidate: number; stable: number; noise: number };

function meanVar(xs: readonly number[]): { mean: number; variance: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const variance = xs.length > 1 ? xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, variance };
}

const fmt = (x: number) => x.toFixed(3);

/** Judges the candidate against the stable arm (see the module comment). */
export function judgeCanary(stable: ArmWindow, candidate: ArmWindow, o: JudgeOptions): Verdict {
  if (stable.lifts.length >= o.minUsers && candidate.lifts.length >= o.minUsers) {
    const s = meanVar(stable.lifts);
    const c = meanVar(candidate.lifts);
    // Welch's standard error of the difference of means (users are independent samples).
    const noise = o.z * Math.sqrt(s.variance / stable.lifts.length + c.variance / candidate.lifts.length);
    if (c.mean + noise < s.mean)
      return {
        rollback: true,
        statistic: "personalization",
        candidate: c.mean,
        stable: s.mean,
        noise,
        reason: `personalization lift ${fmt(c.mean)} (${candidate.lifts.length} users) is below the stable version's ${fmt(s.mean)} (${stable.lifts.length} users) by more than its noise ${fmt(noise)}`,
      };
  }
  if (stable.jobs >= o.minJobs && candidate.jobs >= o.minJobs) {
    const ps = stable.failed / stable.jobs;
    const pc = candidate.failed / candidate.jobs;
    const pooled = (stable.failed + candidate.failed) / (stable.jobs + candidate.jobs);
    const noise = o.z * Math.sqrt(pooled * (1 - pooled) * (1 / stable.jobs + 1 / candidate.jobs));
    if (pc - ps > noise && pc > ps)
      return {
        rollback: true,
        statistic: "error_rate",
        candidate: pc,
        stable: ps,
        noise,
        reason: `error rate ${fmt(pc)} (${candidate.jobs} jobs) is above the stable version's ${fmt(ps)} (${stable.jobs} jobs) by more than its noise ${fmt(noise)}`,
      };
  }
  return { rollback: false, reason: "no evidence that the candidate is worse" };
}
