/**
 * The evaluation report model: one run = one served batch (a model version, sampler, steps and
 * guidance) scored by a verifier. Pure: embeddings, scores and pools in; plain values out.
 */
import { judgeSamplers, type FrontierResult, type FrontierRun } from "./frontier.js";
import { personalizationTest, median } from "./permutation.js";
import { diversity, retrievalAtK, f1Score } from "./retrieval.js";

/** A run's generated items and how to score them. */
export interface RunInput {
  /** Shown in tables and plots, e.g. "ddim-50 g=3". */
  label: string;
  batchId: string;
  modelVersion: string;
  sampler: string;
  steps: number;
  /** Timestep spacing of the served batch. @default "linspace" */
  spacing?: string;
  guidance: number;
  /** Which verifier produced `score` ("oracle" or "learned"). */
  verifier: string;
  /** User ids, in the order labels refer to. */
  users: string[];
  /** labels[i] = index into users of the user item i was generated for. */
  labels: number[];
  /** Re-encoded embeddings of the generated images [items, dim]. */
  embeddings: Float32Array;
  dim: number;
  /** P(like | users[u], item i). */
  score: (user: number, item: number) => number;
  /** Catalogue embeddings [catalogueItems, dim] and each user's rated pool (catalogue indices). */
  catalogue: Float32Array;
  pools: { liked: number[]; disliked: number[] }[];
  /** Retrieval cut-offs. @default [1, 5, 10] */
  ks?: number[];
}

export interface UserReport {
  userId: string;
  items: number;
  /** m_u: mean verifier score of the user's own items. */
  own: number;
  /** Mean score of the user's items for the other users. */
  others: number;
  /** Scores of each of the user's items, for the distribution plot. */
  scores: number[];
  retrieval: { k: number; precision: number; recall: number }[];
  diversity: number;
}

export interface RunReport {
  label: string;
  batchId: string;
  modelVersion: string;
  sampler: string;
  steps: number;
  spacing?: string;
  guidance: number;
  verifier: string;
  users: number;
  items: number;
  /** T = median_u m_u. */
  statistic: number;
  p: number;
  permutations: number;
  own: number;
  others: number;
  effect: number;
  nullStatistics: number[];
  retrieval: { k: number; precision: number; recall: number; f1: number }[];
  diversity: number;
  perUser: UserReport[];
}

/** Scores one run: permutation test (B permutations), retrieval@k and diversity. */
export function evaluateRun(input: RunInput, permutations = 1000, seed = 1): RunReport {
  const { users, labels, embeddings, dim } = input;
  const ks = input.ks ?? [1, 5, 10];
  if (embeddings.length !== labels.length * dim) throw new RangeError(`embeddings has ${embeddings.length} values, expected ${labels.length}×${dim}`);
  const test = personalizationTest({ users: users.length, labels, score: input.score }, permutations, seed);
  const byUser = users.map(() => [] as number[]);
  labels.forEach((u, i) => byUser[u]!.push(i));
  const perUser: UserReport[] = [];
  for (const [u, items] of byUser.entries()) {
    if (items.length === 0) continue;
    const own = items.map((i) => input.score(u, i));
    let others = 0;
    for (const i of items) {
      let rest = 0;
      for (let v = 0; v < users.length; v++) if (v !== u) rest += input.score(v, i);
      others += users.length > 1 ? rest / (users.length - 1) : 0;
    }
    const generated = new Float32Array(items.length * dim);
    items.forEach((i, j) => generated.set(embeddings.subarray(i * dim, (i + 1) * dim), j * dim));
    const pool = input.pools[u] ?? { liked: [], disliked: [] };
    perUser.push({
      userId: users[u]!,
      items: items.length,
      own: own.reduce((a, b) => a + b, 0) / own.length,
      others: others / items.length,
      scores: own,
      retrieval: ks.map((k) => {
        const r = retrievalAtK({ generated, catalogue: input.catalogue, dim, liked: pool.liked, disliked: pool.disliked, k });
        return { k, precision: r.precision, recall: r.recall };
      }),
      diversity: diversity(generated, dim),
    });
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const retrieval = ks.map((k, j) => {
    const precision = mean(perUser.map((r) => r.retrieval[j]!.precision));
    const recall = mean(perUser.map((r) => r.retrieval[j]!.recall));
    return { k, precision, recall, f1: f1Score(precision, recall) };
  });
  return {
    label: input.label,
    batchId: input.batchId,
    modelVersion: input.modelVersion,
    sampler: input.sampler,
    steps: input.steps,
    ...(input.spacing ? { spacing: input.spacing } : {}),
    guidance: input.guidance,
    verifier: input.verifier,
    users: perUser.length,
    items: labels.length,
    statistic: test.statistic,
    p: test.p,
    permutations: test.permutations,
    own: test.own,
    others: test.others,
    effect: test.effect,
    nullStatistics: test.nullStatistics,
    retrieval,
    diversity: mean(perUser.map((r) => r.diversity)),
    perUser,
  };
}

export interface Comparison {
  /** The run the others are compared with (the first; e.g. the paper's 1000-step DDPM). */
  baseline: string;
  rows: {
    label: string;
    sampler: string;
    steps: number;
    guidance: number;
    statistic: number;
    delta: number;
    p: number;
    effect: number;
    f1At1: number;
    diversity: number;
  }[];
}

/** Side-by-side table of runs; `delta` is each statistic minus the baseline's (the first run). */
export function compareRuns(runs: RunReport[]): Comparison {
  const base = runs[0];
  return {
    baseline: base?.label ?? "",
    rows: runs.map((r) => ({
      label: r.label,
      sampler: r.sampler,
      steps: r.steps,
      guidance: r.guidance,
      statistic: r.statistic,
      delta: r.statistic - (base?.statistic ?? r.statistic),
      p: r.p,
      effect: r.effect,
      f1At1: r.retrieval.find((x) => x.k === 1)?.f1 ?? Number.NaN,
      diversity: r.diversity,
    })),
  };
}

/**
 * The served runs as frontier points: runs of one sampler configuration at one guidance are its seed
 * sets, in the order given (frontier.ts judges them against the DDPM-1000 runs).
 */
export function frontierRuns(runs: RunReport[]): FrontierRun[] {
  const seen = new Map<string, number>();
  return runs.map((r) => {
    const key = `${r.modelVersion}|${r.sampler}|${r.steps}|${r.spacing ?? "linspace"}|${r.guidance}`;
    const seedSet = seen.get(key) ?? 0;
    seen.set(key, seedSet + 1);
    return {
      sampler: r.sampler,
      steps: r.steps,
      spacing: r.spacing ?? "linspace",
      guidance: r.guidance,
      seedSet,
      own: r.perUser.map((u) => u.own),
      diversity: r.perUser.map((u) => u.diversity),
    };
  });
}

/**
 * The sampler rule (replacing "within 0.02 of DDPM at equal guidance"): judged on the frontier when
 * the runs include DDPM-1000 (undefined otherwise). Runs of several model versions: the first one's.
 */
export function samplerFrontier(runs: RunReport[]): FrontierResult | undefined {
  const version = runs[0]?.modelVersion;
  const mine = runs.filter((r) => r.modelVersion === version);
  if (!mine.some((r) => r.sampler === "ddpm" && r.steps === 1000)) return undefined;
  return judgeSamplers(frontierRuns(mine));
}

/** Plain-text table of a comparison, for terminals and CI logs. */
export function formatComparison(c: Comparison): string {
  const head = ["run", "sampler", "steps", "g", "T=median m_u", "ΔT vs " + c.baseline, "p", "effect", "F1@1", "diversity"];
  const rows = c.rows.map((r) => [
    r.label,
    r.sampler,
    String(r.steps),
    r.guidance.toFixed(1),
    r.statistic.toFixed(4),
    (r.delta >= 0 ? "+" : "") + r.delta.toFixed(4),
    r.p.toFixed(4),
    r.effect.toFixed(4),
    r.f1At1.toFixed(3),
    r.diversity.toFixed(3),
  ]);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  return [head, ...rows].map((r) => r.map((c, j) => c.padEnd(widths[j]!)).join("  ")).join("\n");
}

/** Median of each user's own score (handy in tests and summaries). */
export const medianOwn = (r: RunReport) => median(r.perUser.map((u) => u.own));

/** The JSON a machine reads. */
export interface EvalReport {
  generatedAt: string;
  runs: RunReport[];
  comparison: Comparison;
  /** The frontier judgement of the samplers, when the runs include DDPM-1000. */
  samplers?: FrontierResult;
}

export function buildReport(runs: RunReport[], now = new Date()): EvalReport {
  const samplers = samplerFrontier(runs);
  return { generatedAt: now.toISOString(), runs, comparison: compareRuns(runs), ...(samplers ? { samplers } : {}) };
}
