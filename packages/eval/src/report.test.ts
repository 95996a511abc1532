import { describe, expect, it } from "vitest";
import { diversity, f1Score, retrievalAtK } from "./retrieval.js";
import { buildReport, compareRuns, evaluateRun, formatComparison, frontierRuns, type RunInput } from "./report.js";
import { histogram, renderReportHtml } from "./html.js";

// A 2-d catalogue: items 0..3 point along +x (user A likes them), items 4..7 along +y (user B).
const catalogue = Float32Array.from([1, 0, 1, 0.1, 1, 0.2, 1, 0.3, 0, 1, 0.1, 1, 0.2, 1, 0.3, 1]);
const poolA = { liked: [0, 1, 2, 3], disliked: [4, 5, 6, 7] };
const poolB = { liked: [4, 5, 6, 7], disliked: [0, 1, 2, 3] };

describe("retrievalAtK", () => {
  it("precision counts liked items among each generated item's k nearest; recall counts liked items reached", () => {
    // One item right on item 0, one right on item 3: top-1 hits 0 and 3 (both liked).
    const r = retrievalAtK({ generated: Float32Array.from([1, 0, 1, 0.3]), catalogue, dim: 2, ...poolA, k: 1 });
    expect(r.precision).toBe(1);
    expect(r.recall).toBe(0.5);
    expect(r.f1).toBeCloseTo(f1Score(1, 0.5));
    // Pointing at the disliked side: nothing liked in the top 2.
    expect(retrievalAtK({ generated: Float32Array.from([0, 1]), catalogue, dim: 2, ...poolA, k: 2 }).precision).toBe(0);
    // k larger than half the pool must include disliked items: precision 4/8 at k = 8.
    expect(retrievalAtK({ generated: Float32Array.from([1, 0]), catalogue, dim: 2, ...poolA, k: 8 })).toMatchObject({ precision: 0.5, recall: 1 });
  });

  it("is zero without generated items or pool", () => {
    expect(retrievalAtK({ generated: new Float32Array(0), catalogue, dim: 2, ...poolA, k: 1 }).precision).toBe(0);
    expect(retrievalAtK({ generated: Float32Array.from([1, 0]), catalogue, dim: 2, liked: [], disliked: [], k: 1 }).recall).toBe(0);
  });
});

describe("diversity", () => {
  it("is 0 for identical embeddings and 1 for orthogonal pairs", () => {
    expect(diversity(Float32Array.from([1, 0, 2, 0]), 2)).toBeCloseTo(0);
    expect(diversity(Float32Array.from([1, 0, 0, 1]), 2)).toBeCloseTo(1);
    expect(diversity(Float32Array.from([1, 0]), 2)).toBe(0);
  });
});

function run(personalized: boolean, label = "ddim-50 g=3", items = 4): RunInput {
  // 10 users alternate between taste A (+x) and B (+y); each gets `items` generated embeddings.
  const users = Array.from({ length: 10 }, (_, u) => `u${u}`);
  const labels = users.flatMap((_, u) => Array<number>(items).fill(u));
  const taste = (u: number) => u % 2;
  const embeddings = new Float32Array(labels.length * 2);
  labels.forEach((u, i) => {
    const t = personalized ? taste(u) : i % 2;
    embeddings.set(t === 0 ? [1, 0.05 * (i % 4)] : [0.05 * (i % 4), 1], i * 2);
  });
  return {
    label,
    batchId: `batch_${label}`,
    modelVersion: "demo-v1",
    sampler: "ddim",
    steps: 50,
    guidance: 3,
    verifier: "oracle",
    users,
    labels,
    embeddings,
    dim: 2,
    score: (u, i) => (embeddings[i * 2 + taste(u)]! > 0.5 ? 0.9 : 0.1),
    catalogue,
    pools: users.map((_, u) => (taste(u) === 0 ? poolA : poolB)),
  };
}

describe("evaluateRun", () => {
  it("reports the paper's statistic, p, effect and retrieval for a personalized run", () => {
    const r = evaluateRun(run(true), 200);
    expect(r.statistic).toBeCloseTo(0.9);
    expect(r.p).toBeCloseTo(1 / 201);
    expect(r.effect).toBeCloseTo(0.9 - (4 * 0.9 + 5 * 0.1) / 9);
    expect(r.users).toBe(10);
    expect(r.items).toBe(40);
    expect(r.perUser[0]!.scores).toHaveLength(4);
    expect(r.retrieval.find((x) => x.k === 1)!.precision).toBe(1);
    expect(r.nullStatistics).toHaveLength(200);
  });

  it("finds nothing when items ignore their user", () => {
    const r = evaluateRun(run(false), 200);
    expect(r.statistic).toBeCloseTo(0.5);
    expect(r.p).toBeGreaterThan(0.05);
    expect(Math.abs(r.effect)).toBeLessThan(0.05);
    expect(r.retrieval.find((x) => x.k === 1)!.precision).toBeCloseTo(0.5);
  });

  it("refuses embeddings that do not match the labels", () => {
    expect(() => evaluateRun({ ...run(true), embeddings: new Float32Array(3) }, 10)).toThrow(/expected/);
  });
});

describe("comparison and HTML report", () => {
  it("puts runs side by side with ΔT against the first", () => {
    const a = evaluateRun(run(true, "ddpm-1000"), 100);
    const b = evaluateRun(run(false, "ddim-50"), 100);
    const c = compareRuns([a, b]);
    expect(c.baseline).toBe("ddpm-1000");
    expect(c.rows[0]!.delta).toBe(0);
    expect(c.rows[1]!.delta).toBeCloseTo(b.statistic - a.statistic);
    const text = formatComparison(c);
    expect(text.split("\n")).toHaveLength(3);
    expect(text).toContain("ddpm-1000");
  });

  it("renders plots (null histogram with the observed line, per-user scores) and image grids, escaping text", () => {
    const r = evaluateRun(run(true, "<b>x</b>"), 100);
    const html = renderReportHtml(buildReport([r], new Date(0)), {
      [r.batchId]: { u0: { liked: ["data:image/png;base64,AA"], generated: ["data:image/png;base64,BB"] } },
    });
    expect(html).toContain('aria-label="null distribution"');
    expect(html).toContain("observed T = 0.900");
    expect(html).toContain('aria-label="per-user scores"');
    expect(html).toContain("data:image/png;base64,BB");
    expect(html).not.toContain("<b>x</b>");
    expect(html).toContain("1970-01-01T00:00:00.000Z");
  });

  it("judges samplers on the frontier only when DDPM-1000 ran, repeated runs being seed sets", () => {
    const ddpm = { ...evaluateRun(run(true, "ddpm-1000"), 10), sampler: "ddpm", steps: 1000 };
    const fast = { ...ddpm, label: "ddim-3", sampler: "ddim", steps: 3, spacing: "trailing" };
    expect(buildReport([fast]).samplers).toBeUndefined();
    const runs = frontierRuns([ddpm, fast, ddpm, fast]);
    expect(runs.map((r) => [r.sampler, r.seedSet])).toEqual([
      ["ddpm", 0],
      ["ddim", 0],
      ["ddpm", 1],
      ["ddim", 1],
    ]);
    const judged = buildReport([ddpm, fast, ddpm, fast]).samplers!;
    expect(judged.baseline).toBe("ddpm-1000");
    // identical per-user results: gap 0 at the one guidance measured (seed sets pooled), too few points to qualify
    expect(judged.points.find((p) => p.config === "ddim-3-trailing")!.gap).toBe(0);
    expect(judged.samplers).toEqual([expect.objectContaining({ config: "ddim-3-trailing", comparable: 1, qualifies: false })]);
    expect(renderReportHtml(buildReport([ddpm, fast, ddpm, fast], new Date(0)), {})).toContain("Samplers on the frontier");
  });

  it("histogram puts every value in a bin", () => {
    expect(histogram([0, 0.5, 1, 2, -1], 0, 1, 2)).toEqual([2, 3]);
  });
});
