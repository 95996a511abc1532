/*
 * The statistical checks of the models issue, run on the committed artifacts with the serving
 * code (onnxruntime-node sampler), the manifest's default sampler and the demo world's exact oracle
 * verifier: trained prior p ≤ 0.01 with own-user P(like) ≥ 0.3 above other users'; users fitted
 * later by add-users personalized by the same statistics; the shuffled-user control's effect < 0.05;
 * and the shipped default qualifies by the frontier rule (docs/evaluation.md, "Samplers").
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createOnnxPrior, createOnnxSession, createPriorSampler, loadPriorModelFiles, type SamplerName, type TimestepSpacing } from "@rebeca/inference";
import { configKey, judgeSamplers } from "./frontier.js";
import { oracleLikeProbability, type DemoUser } from "./oracle.js";
import { personalizationTest } from "./permutation.js";
import { loadSweepModel, sweep } from "./sweep.js";

const MODELS = fileURLToPath(new URL("../../../models/", import.meta.url));
const world = JSON.parse(readFileSync(`${MODELS}demo-v1/world/users.json`, "utf8")) as { users: DemoUser[] };
const ITEMS_PER_USER = 10;

async function evaluate(version: string, users: DemoUser[]) {
  const files = await loadPriorModelFiles(`${MODELS}${version}/manifest.json`);
  const { session } = await createOnnxSession(files.prior.bytes, { providers: ["cpu"], intraOpThreads: 1 });
  const sampler = createPriorSampler({
    model: createOnnxPrior(session, { embeddingDim: files.manifest.embedding_dim, userDim: files.manifest.user_dim }),
    userTable: files.userTable,
    manifest: files.manifest,
  });
  const rows = users.map((u) => {
    const row = files.userTable.rowOf(u.id);
    if (row === undefined) throw new Error(`${u.id} is not in ${version}`);
    return row;
  });
  const seeds = rows.flatMap((_, k) => Array.from({ length: ITEMS_PER_USER }, (_, i) => 100_000 + k * ITEMS_PER_USER + i));
  const labels = rows.flatMap((_, k) => Array(ITEMS_PER_USER).fill(k) as number[]);
  // no sampler, steps, spacing or guidance: the manifest's defaults, as a request that names none gets
  const embeddings = await sampler.sample({ userRow: labels.map((k) => rows[k]!), seeds });
  const D = files.manifest.embedding_dim;
  return personalizationTest({ users: users.length, labels, score: (u, i) => oracleLikeProbability(users[u]!, embeddings.subarray(i * D, (i + 1) * D)) }, 1000);
}

describe("committed demo models (oracle verifier, the manifest's default sampler, 10 items per user, B = 1000)", () => {
  const trained = world.users.filter((u) => u.split === "train");
  const added = world.users.filter((u) => u.split === "new");

  it("the trained prior personalizes: p ≤ 0.01 and own-user P(like) ≥ 0.3 above other users'", async () => {
    const r = await evaluate("demo-v1", trained);
    expect(trained.length).toBeGreaterThanOrEqual(200);
    expect(r.p).toBeLessThanOrEqual(0.01);
    expect(r.effect).toBeGreaterThanOrEqual(0.3);
  });

  it("users added after training by add-users are personalized by the same statistics", async () => {
    const r = await evaluate("demo-v1", added);
    expect(added.length).toBeGreaterThanOrEqual(20);
    expect(r.p).toBeLessThanOrEqual(0.01);
    expect(r.effect).toBeGreaterThanOrEqual(0.3);
  });

  it("the shuffled-user control does not (effect < 0.05)", async () => {
    const r = await evaluate("demo-v1-control", trained);
    expect(Math.abs(r.effect)).toBeLessThan(0.05);
  });

  it("the shipped default (≤ 5 evaluations) qualifies on the frontier against DDPM-1000 (rule re-applied to freshly sampled default runs)", async () => {
    // models/frontier.json keeps the per-user values of DDPM-1000's 14 runs and of the default's. DDPM-1000
    // is too slow to re-run here (~30 s per point), so its stored values are spot-checked against the
    // committed prior (first 20 users of two points, same seeds: they must agree to float32 rounding); the default's
    // 14 runs are sampled again in full; then the rule is applied to the fresh runs.
    type Stored = { sampler: SamplerName; steps: number; spacing: TimestepSpacing; guidance: number; seedSet: number; own: number[]; diversity: number[] };
    const frontier = JSON.parse(readFileSync(`${MODELS}frontier.json`, "utf8")) as {
      users: number;
      itemsPerUser: number;
      perUser: { version: string; seedBase: number; runs: Stored[] };
    };
    const manifest = JSON.parse(readFileSync(`${MODELS}demo-v1/manifest.json`, "utf8")) as {
      defaults: { sampler: SamplerName; steps: number; spacing: TimestepSpacing; guidance: number };
    };
    const d = manifest.defaults;
    expect(d.sampler).not.toBe("ddpm");
    expect(d.steps).toBeLessThanOrEqual(5);
    expect(frontier.perUser.version).toBe("demo-v1");
    const users = trained.slice(0, frontier.users);
    const model = await loadSweepModel(`${MODELS}demo-v1`);
    const opts = { itemsPerUser: frontier.itemsPerUser, seedSets: 2, seedBase: frontier.perUser.seedBase };
    const stored = frontier.perUser.runs;
    const ddpm = stored.filter((r) => r.sampler === "ddpm");
    expect(ddpm.length).toBe(14);
    for (const g of [1, 5]) {
      const [fresh] = await sweep(model, [{ sampler: "ddpm", steps: 1000, spacing: "linspace" }], {
        ...opts,
        users: users.slice(0, 20),
        guidances: [g],
        seedSets: 1,
      });
      const kept = ddpm.find((r) => r.guidance === g && r.seedSet === 0)!;
      // Agree to float32 rounding, not bit for bit: onnxruntime's CPU kernels round differently by
      // instruction set (values stored on one VM differed by up to 3e-8 on another). Another prior
      // or seed moves them by 1e-3 and more.
      const gap = (a: ArrayLike<number>, b: number[]) => Math.max(...b.slice(0, 20).map((v, i) => Math.abs(a[i]! - v)));
      expect(fresh!.own.length).toBe(20);
      expect(gap(fresh!.own, kept.own)).toBeLessThan(1e-6);
      expect(gap(fresh!.diversity, kept.diversity)).toBeLessThan(1e-6);
    }
    const guidances = [...new Set(ddpm.map((r) => r.guidance))];
    const mine = await sweep(model, [{ sampler: d.sampler, steps: d.steps, spacing: d.spacing }], { ...opts, users, guidances });
    const judged = judgeSamplers([...ddpm, ...mine]);
    const verdict = judged.samplers.find((s) => s.config === configKey(d))!;
    console.info(
      `[frontier] ${verdict.config}: ${verdict.comparable} comparable points, worst lower bound ${verdict.worstLower?.toFixed(4)} vs −${judged.noise.T.toFixed(4)}`,
    );
    expect(verdict.qualifies).toBe(true);
    expect(judged.defaults).toEqual({ sampler: d.sampler, steps: d.steps, spacing: d.spacing, guidance: d.guidance });
  }, 300_000);

  it("add-users left prior.onnx byte-identical (its sha256 before adding equals the shipped one)", async () => {
    const manifest = JSON.parse(readFileSync(`${MODELS}demo-v1/manifest.json`, "utf8"));
    const runs = (manifest.training?.added_users ?? []) as { prior_sha256_before?: string }[];
    expect(runs.length, "demo-v1 must have users added by add-users").toBeGreaterThan(0);
    for (const run of runs) expect(run.prior_sha256_before).toBe(manifest.files.prior.sha256);
  });
});
