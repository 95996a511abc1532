import { describe, expect, it } from "vitest";
import { median, personalizationTest, seededRandom } from "./permutation.js";

describe("personalizationTest", () => {
  it("finds personalization when each user's items score high for that user only", () => {
    const users = 20;
    const labels = Array.from({ length: users * 5 }, (_, i) => i % users);
    const r = personalizationTest({ users, labels, score: (u, i) => (labels[i] === u ? 0.9 : 0.2) }, 1000);
    expect(r.statistic).toBeCloseTo(0.9);
    expect(r.p).toBeCloseTo(1 / 1001);
    expect(r.effect).toBeCloseTo(0.7);
    expect(r.nullStatistics).toHaveLength(1000);
  });

  it("does not find it when scores ignore the user (the control the paper's test must pass)", () => {
    const random = seededRandom(3);
    const itemScore = Array.from({ length: 200 }, () => random());
    const labels = Array.from({ length: 200 }, (_, i) => i % 20);
    const r = personalizationTest({ users: 20, labels, score: (_u, i) => itemScore[i]! }, 1000);
    expect(r.effect).toBeCloseTo(0, 10);
    expect(r.p).toBeGreaterThan(0.05);
  });

  it("computes p = (1 + #{T_perm ≥ T}) / (1 + B) with B = permutations", () => {
    // All scores equal: every permutation ties the observed statistic, so p = 1.
    const r = personalizationTest({ users: 3, labels: [0, 1, 2, 0, 1, 2], score: () => 0.5 }, 99);
    expect(r.p).toBe(1);
  });

  it("is reproducible for a seed", () => {
    const labels = [0, 1, 0, 1, 0, 1];
    const score = (u: number, i: number) => (((u + 1) * (i + 3)) % 7) / 7;
    expect(personalizationTest({ users: 2, labels, score }, 200, 9)).toEqual(personalizationTest({ users: 2, labels, score }, 200, 9));
  });
});

describe("median", () => {
  it("handles odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
