#!/usr/bin/env node
/**
 * The sampler evaluation of the committed priors (docs/evaluation.md, "Samplers"):
 *
 *   node packages/eval/dist/frontier-cli.js --model models/demo-v1 [--control models/demo-v1-control]
 *     [--users 200] [--items 8] [--guidance 1,1.5,…] [--control-guidance 1,3,7] [--runs-out DIR | --runs-in DIR] [--out models/frontier.json] [--svg docs/frontier-demo-v1.svg] [--write-defaults]
 *
 * Sweeps guidance for DDPM-1000 and the fast samplers on two seed sets, judges them on the frontier
 * (frontier.ts) and, with --write-defaults, writes the chosen default into each manifest's `defaults`
 * (the control gets the trained model's defaults: it is a control, not a product).
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { configKey, judgeSamplers, type FrontierRun } from "./frontier.js";
import { frontierSvg, frontierTable } from "./frontier-report.js";
import { oracleLikeProbability, type DemoUser } from "./oracle.js";
import { personalizationTest } from "./permutation.js";
import { loadSweepModel, sweep, type SweepConfig } from "./sweep.js";

/** DDPM-1000 and the fast samplers swept by default (≤ 10 evaluations). */
const SWEEP_CONFIGS: SweepConfig[] = [
  { sampler: "ddpm", steps: 1000, spacing: "linspace" },
  ...[2, 3, 4, 5, 10].map((steps) => ({ sampler: "ddim" as const, steps, spacing: "trailing" as const })),
  { sampler: "ddim", steps: 4, spacing: "linspace" },
  { sampler: "ddim", steps: 4, spacing: "leading" },
  ...[3, 4, 5].map((steps) => ({ sampler: "dpmpp_2m" as const, steps, spacing: "trailing" as const })),
  ...[3, 4, 5].map((steps) => ({ sampler: "dpmpp_2m_sde" as const, steps, spacing: "trailing" as const })),
];
const SWEEP_GUIDANCES = [1, 1.5, 2, 3, 4, 5, 7];
const SEED_BASE = 500_000;

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    control: { type: "string" },
    users: { type: "string", default: "200" },
    items: { type: "string", default: "8" },
    guidance: { type: "string" },
    "control-guidance": { type: "string", description: "guidances for the control (default: --guidance)" },
    configs: { type: "string", description: "comma list of sampler-steps-spacing, e.g. ddpm-1000-linspace,ddim-3-trailing" },
    out: { type: "string" },
    svg: { type: "string" },
    "write-defaults": { type: "boolean", default: false },
    "runs-out": { type: "string", description: "also save the measured runs (per-user scores, samples) in this directory" },
    "runs-in": { type: "string", description: "judge the runs saved by --runs-out instead of sampling again" },
  },
});
if (!values.model) {
  console.error("usage: frontier-cli --model DIR [--control DIR] [--users N] [--items K] [--out f.json] [--svg f.svg] [--write-defaults]");
  process.exit(2);
}

const configs = values.configs
  ? values.configs.split(",").map((s) => {
      const [sampler, steps, spacing] = s.split("-");
      return { sampler, steps: Number(steps), spacing: spacing ?? "linspace" } as SweepConfig;
    })
  : SWEEP_CONFIGS;
const guidances = values.guidance ? values.guidance.split(",").map(Number) : SWEEP_GUIDANCES;
const world = JSON.parse(await readFile(join(values.model, "world", "users.json"), "utf8")) as { users: DemoUser[] };
const users = world.users.filter((u) => u.split === "train").slice(0, Number(values.users));
const itemsPerUser = Number(values.items);

async function measure(dir: string, gs = guidances) {
  const model = await loadSweepModel(dir);
  const saved = values["runs-in"] ? join(values["runs-in"], model.version) : undefined;
  const runs = saved
    ? await loadRuns(saved)
    : await sweep(model, configs, {
        users,
        itemsPerUser,
        guidances: gs,
        seedSets: 2,
        seedBase: SEED_BASE,
        onRun: (r, s) => console.error(`[frontier] ${model.version} ${r.sampler}-${r.steps}-${r.spacing} g=${r.guidance} set ${r.seedSet}: ${s.toFixed(1)} s`),
      });
  if (values["runs-out"]) await saveRuns(join(values["runs-out"], model.version), runs);
  return { model, runs, result: judgeSamplers(runs) };
}

/** Runs as runs.json (everything but the samples) + samples.f32 (all samples, in run order). */
async function saveRuns(dir: string, runs: FrontierRun[]) {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "runs.json"),
    JSON.stringify(
      runs.map(({ samples, own, diversity, ...r }) => ({ ...r, own: Array.from(own), diversity: Array.from(diversity), sampleCount: samples?.length ?? 0 })),
    ),
  );
  const all = new Float32Array(runs.reduce((n, r) => n + (r.samples?.length ?? 0), 0));
  let off = 0;
  for (const r of runs) {
    if (!r.samples) continue;
    all.set(r.samples, off);
    off += r.samples.length;
  }
  await writeFile(join(dir, "samples.f32"), new Uint8Array(all.buffer));
}

async function loadRuns(dir: string): Promise<FrontierRun[]> {
  const meta = JSON.parse(await readFile(join(dir, "runs.json"), "utf8")) as (FrontierRun & { sampleCount: number })[];
  const bytes = await readFile(join(dir, "samples.f32"));
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  let off = 0;
  return meta.map(({ sampleCount, ...r }) => {
    const samples = all.slice(off, off + sampleCount);
    off += sampleCount;
    return { ...r, samples };
  });
}

/** Permutation test (B = 1000) of one run's items, for the control's "fails with every sampler". */
function permutationOf(run: FrontierRun) {
  const per = run.itemsPerUser!;
  const dim = run.dim!;
  const labels = Array.from({ length: users.length * per }, (_, i) => Math.floor(i / per));
  return personalizationTest(
    { users: users.length, labels, score: (u, i) => oracleLikeProbability(users[u]!, run.samples!.subarray(i * dim, (i + 1) * dim)) },
    1000,
  );
}

const report: Record<string, unknown> = { users: users.length, itemsPerUser, guidances, seedSets: 2 };
const trained = await measure(values.model);
report[trained.model.version] = trained.result;
const d = trained.result.defaults;
// Per-user values of DDPM-1000 and of the default's runs: what CI needs to re-apply the rule to the
// default (committed-models.test.ts re-samples the default's runs and spot-checks DDPM's against these).
const kept = trained.runs.filter((r) => configKey(r) === trained.result.baseline || (d && configKey(r) === configKey(d)));
report.perUser = {
  version: trained.model.version,
  seedBase: SEED_BASE,
  runs: kept.map((r) => ({
    sampler: r.sampler,
    steps: r.steps,
    spacing: r.spacing,
    guidance: r.guidance,
    seedSet: r.seedSet,
    own: Array.from(r.own),
    diversity: Array.from(r.diversity),
  })),
};
console.log(frontierTable(trained.result, trained.model.version));
let control: Awaited<ReturnType<typeof measure>> | undefined;
if (values.control) {
  control = await measure(values.control, values["control-guidance"] ? values["control-guidance"].split(",").map(Number) : guidances);
  const perms = control.runs
    .filter((r) => r.seedSet === 0)
    .map((r) => ({
      config: `${r.sampler}-${r.steps}-${r.spacing}`,
      guidance: r.guidance,
      ...(({ statistic, p, effect }) => ({ statistic, p, effect }))(permutationOf(r)),
    }));
  report[control.model.version] = { ...control.result, permutation: perms };
  console.log(frontierTable(control.result, control.model.version));
  console.log(
    `control permutation p (seed set 0): min ${Math.min(...perms.map((p) => p.p)).toFixed(4)}, max |effect| ${Math.max(...perms.map((p) => Math.abs(p.effect))).toFixed(4)}`,
  );
}
if (values.out) await writeFile(values.out, JSON.stringify(report, null, 1) + "\n");
if (values.svg) await writeFile(values.svg, frontierSvg(trained.result, `${trained.model.version}: T vs diversity over guidance`));
console.log(d ? `default: ${d.sampler}, ${d.steps} steps, ${d.spacing}, g = ${d.guidance}` : "no fast sampler qualifies: keep DDPM-1000 as the default");
if (values["write-defaults"]) {
  const defaults = d ?? { sampler: "ddpm", steps: 1000, spacing: "linspace", guidance: 3 };
  for (const dir of [values.model, values.control].filter((x): x is string => !!x)) {
    const path = join(dir, "manifest.json");
    const manifest = JSON.parse(await readFile(path, "utf8")) as { defaults: unknown };
    manifest.defaults = { guidance: defaults.guidance, steps: defaults.steps, sampler: defaults.sampler, spacing: defaults.spacing };
    await writeFile(path, JSON.stringify(manifest, null, 1));
    console.log(`wrote defaults to ${path}`);
  }
}
