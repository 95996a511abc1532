import { describe, expect, it } from "vitest";
import { judgeCanary } from "./canary-judge.js";

const opts = { minUsers: 8, minJobs: 20, z: 2.33 };
/** Deterministic spread around `mean`. */
const lifts = (mean: number, n: number, spread = 0.1) => Array.from({ length: n }, (_, i) => mean + spread * Math.sin(i * 1.7));

describe("judgeCanary", () => {
  it("rolls back a candidate whose personalization is worse beyond the noise, and says by how much", () => {
    const v = judgeCanary({ lifts: lifts(0.6, 10), jobs: 0, failed: 0 }, { lifts: lifts(0.0, 10), jobs: 0, failed: 0 }, opts);
    expect(v.rollback).toBe(true);
    expect(v).toMatchObject({ statistic: "personalization" });
    expect(v.reason).toMatch(/personalization lift -?0\.0\d\d \(10 users\) is below the stable version's 0\.6\d\d \(10 users\)/);
  });

  it("keeps a candidate that is equal within noise, or better (one-sided)", () => {
    expect(judgeCanary({ lifts: lifts(0.6, 10), jobs: 0, failed: 0 }, { lifts: lifts(0.58, 10), jobs: 0, failed: 0 }, opts).rollback).toBe(false);
    expect(judgeCanary({ lifts: lifts(0.3, 10), jobs: 0, failed: 0 }, { lifts: lifts(0.9, 10), jobs: 0, failed: 0 }, opts).rollback).toBe(false);
    // Noisy arms: the same gap is not evidence.
    expect(judgeCanary({ lifts: lifts(0.6, 10, 2), jobs: 0, failed: 0 }, { lifts: lifts(0.4, 10, 2), jobs: 0, failed: 0 }, opts).rollback).toBe(false);
  });

  it("waits for enough users on both arms", () => {
    expect(judgeCanary({ lifts: lifts(0.6, 10), jobs: 0, failed: 0 }, { lifts: lifts(0.0, 7), jobs: 0, failed: 0 }, opts)).toEqual({
      rollback: false,
      reason: "no evidence that the candidate is worse",
    });
  });

  it("rolls back a candidate whose error rate rose beyond noise, not one with a few more failures", () => {
    const v = judgeCanary({ lifts: [], jobs: 100, failed: 1 }, { lifts: [], jobs: 40, failed: 12 }, opts);
    expect(v).toMatchObject({ rollback: true, statistic: "error_rate" });
    expect(judgeCanary({ lifts: [], jobs: 100, failed: 1 }, { lifts: [], jobs: 40, failed: 2 }, opts).rollback).toBe(false);
  });
});
