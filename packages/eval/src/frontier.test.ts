import { describe, expect, it } from "vitest";
import { curveAt, energyDistance, judgeSamplers, seedNoise, type FrontierRun } from "./frontier.js";
import { seededRandom } from "./permutation.js";

const USERS = 60;

/** A run whose users have m_u ≈ T ± jitter and diversity ≈ d ± jitter (deterministic per seed). */
function run(sampler: string, steps: number, guidance: number, seedSet: number, T: number, d: number, seed: number): FrontierRun {
  const r = seededRandom(seed);
  const own = Float64Array.from({ length: USERS }, () => T + (r() - 0.5) * 0.1);
  const diversity = Float64Array.from({ length: USERS }, () => d + (r() - 0.5) * 0.02);
  return { sampler, steps, spacing: sampler === "ddpm" ? "linspace" : "trailing", guidance, seedSet, own, diversity };
}

/** DDPM-1000's curve: T rises 0.70 → 0.80 as diversity falls 0.50 → 0.30 over g = 1..5. */
const ddpm = [1, 2, 3, 4, 5].flatMap((g, k) => [0, 1].map((s) => run("ddpm", 1000, g, s, 0.7 + 0.025 * k, 0.5 - 0.05 * k, 100 + 10 * k + s)));

describe("curveAt", () => {
  const curve = [
    { T: 0.8, diversity: 0.3 },
    { T: 0.7, diversity: 0.5 },
  ];
  it("interpolates linearly, holds flat above the most diverse point, is undefined below the least", () => {
    expect(curveAt(curve, 0.4)).toBeCloseTo(0.75, 12);
    expect(curveAt(curve, 0.9)).toBe(0.7);
    expect(curveAt(curve, 0.2)).toBeUndefined();
    expect(curveAt(curve, 0.2, true)).toBe(0.8);
  });
});

describe("judgeSamplers (one-sided 95 % lower bound of the frontier gap ≥ −DDPM's seed noise at every point)", () => {
  it("measures DDPM's seed-to-seed noise from its two seed sets at equal guidance", () => {
    const n = seedNoise(ddpm);
    expect(n.T).toBeGreaterThan(0);
    expect(n.T).toBeLessThan(0.05);
  });

  it("a sampler on or above the curve qualifies; one clearly below does not; the default is the fewest evaluations", () => {
    const above = [1, 2, 3, 4, 5].flatMap((g, k) => [0, 1].map((s) => run("ddim", 3, g, s, 0.74 + 0.025 * k, 0.48 - 0.05 * k, 200 + 10 * k + s)));
    const slightlyAbove = [1, 2, 3, 4, 5].flatMap((g, k) => [0, 1].map((s) => run("dpmpp_2m", 5, g, s, 0.73 + 0.025 * k, 0.5 - 0.05 * k, 300 + 10 * k + s)));
    const below = [1, 2, 3, 4, 5].flatMap((g, k) => [0, 1].map((s) => run("ddim", 2, g, s, 0.55 + 0.025 * k, 0.5 - 0.05 * k, 400 + 10 * k + s)));
    const r = judgeSamplers([...ddpm, ...above, ...slightlyAbove, ...below], { bootstrap: 400 });
    const verdict = Object.fromEntries(r.samplers.map((s) => [s.config, s.qualifies]));
    expect(verdict).toEqual({ "ddim-3-trailing": true, "dpmpp_2m-5-trailing": true, "ddim-2-trailing": false });
    const gap = r.points.find((p) => p.config === "ddim-3-trailing" && p.guidance === 3)!;
    expect(gap.gap!).toBeGreaterThan(0.02);
    expect(gap.lo!).toBeLessThan(gap.gap!);
    expect(gap.hi!).toBeGreaterThan(gap.gap!);
    // DDPM's T at g = 3 is 0.75; the smallest of ddim-3's guidances with T ≥ 0.75 and a gap ≥ 0 is g = 2 (T 0.765).
    expect(r.defaults).toEqual({ sampler: "ddim", steps: 3, spacing: "trailing", guidance: 2 });
  });

  it("points less diverse than every DDPM point are not comparable, and too few comparable points do not qualify", () => {
    const narrow = [1, 2, 3].flatMap((g) => [0, 1].map((s) => run("ddim", 3, g, s, 0.95, 0.1, 500 + 10 * g + s)));
    const r = judgeSamplers([...ddpm, ...narrow], { bootstrap: 100 });
    expect(r.samplers[0]).toMatchObject({ comparable: 0, qualifies: false });
    expect(r.defaults).toBeUndefined();
  });

  it("refuses to judge without the baseline", () => {
    expect(() => judgeSamplers([run("ddim", 3, 1, 0, 0.7, 0.4, 1)])).toThrow(/no ddpm-1000 runs/);
  });
});

describe("energyDistance", () => {
  const sample = (n: number, shift: number, seed: number) => {
    const r = seededRandom(seed);
    return Float32Array.from({ length: n * 4 }, () => r() + shift);
  };
  it("is near 0 for two samples of one distribution and grows with a shift", () => {
    const same = energyDistance(sample(200, 0, 1), sample(200, 0, 2), 4);
    const shifted = energyDistance(sample(200, 0, 1), sample(200, 1, 2), 4);
    expect(Math.abs(same)).toBeLessThan(0.05);
    expect(shifted).toBeGreaterThan(1);
  });
});
