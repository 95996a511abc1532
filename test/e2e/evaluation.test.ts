/*
 * Evaluates served outputs (issue #8): 50 demo users are served end to end through gateway →
 * prior → decoder → S3 with the trained prior, the shuffled-user control and the paper's
 * 1000-step DDPM, then `rebeca eval` re-encodes the PNGs, scores them with the oracle verifier and
 * runs the permutation test (B = 1000).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, REPO_ROOT, startStack, type BatchClient, type Stack } from "@rebeca/devstack";
import { Sampler } from "@rebeca/contracts/grpc";
import type { EvalReport } from "@rebeca/eval";
import { untilBatchCompleted } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

const run = promisify(execFile);
const USERS = 50;
const IMAGES = 8;

describe("rebeca eval on served batches (50 demo users)", () => {
  let stack: Stack;
  let batches: BatchClient;
  let dir: string;
  let report: EvalReport;
  let printed: string;
  let learned: EvalReport;
  let guidance: EvalReport;
  const ids = modelUserIds("demo-v1-control").slice(0, USERS);

  beforeAll(async () => {
    stack = await startStack({ tenants: ["acme"], services: ["gateway", "prior-worker", "decoder-worker"], env: { gateway: { SHARD_SIZE: "25" } } });
    batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    dir = await mkdtemp(join(tmpdir(), "rebeca-eval-"));
    const serve = async (requestId: string, modelVersion: string, sampler: Sampler, steps?: number, guidance = 3) => {
      const b = await batches.createBatch({ requestId, numImages: IMAGES, seed: 7, guidance, modelVersion, sampler, ...(steps ? { steps } : {}) }, chunksOf(ids, 50));
      return b.batchId;
    };
    const started = Date.now();
    // The model's default sampler (unspecified) is the paper's DDPM; DDIM 50 is asked for.
    const runs = [
      await serve("eval-default", "demo-v1", Sampler.SAMPLER_UNSPECIFIED),
      await serve("eval-ddim", "demo-v1", Sampler.SAMPLER_DDIM, 50),
      await serve("eval-control", "demo-v1-control", Sampler.SAMPLER_UNSPECIFIED),
      await serve("eval-control-ddim", "demo-v1-control", Sampler.SAMPLER_DDIM, 50),
    ];
    // A guidance sweep, compared side by side.
    const sweep = [await serve("eval-g1", "demo-v1", Sampler.SAMPLER_DDIM, 50, 1), await serve("eval-g7", "demo-v1", Sampler.SAMPLER_DDIM, 50, 7)];
    for (const id of [...runs, ...sweep]) await untilBatchCompleted(batches, id, 170_000);
    const served = (Date.now() - started) / 1000;
    const env = { ...process.env, REBECA_ADDRESS: stack.grpcAddress, REBECA_API_KEY: stack.tenants.acme!.apiKey, S3_ENDPOINT: stack.s3.endpoint, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", MODELS_DIR: `${REPO_ROOT}models` };
    const t = Date.now();
    const out = await run(process.execPath, [`${REPO_ROOT}packages/cli/dist/main.js`, "eval", ...runs, "--label", "ddpm-1000", "--label", "ddim-50", "--label", "control ddpm-1000", "--label", "control ddim-50", "--out", dir, "--upload"], { env, timeout: 170_000 });
    printed = out.stdout;
    console.log(`served 6 × ${USERS} users × ${IMAGES} images in ${served.toFixed(1)} s; rebeca eval took ${((Date.now() - t) / 1000).toFixed(1)} s\n${out.stderr}${out.stdout}`);
    report = JSON.parse(await readFile(join(dir, "report.json"), "utf8")) as EvalReport;
    // The learned verifier (exported to ONNX by the training tools), as for users the oracle does not know.
    const l = await run(process.execPath, [`${REPO_ROOT}packages/cli/dist/main.js`, "eval", runs[1]!, runs[3]!, "--verifier", "learned", "--label", "ddim-50 (learned)", "--label", "control ddim-50 (learned)", "--out", join(dir, "learned")], { env, timeout: 170_000 });
    console.log(l.stdout);
    const g = await run(process.execPath, [`${REPO_ROOT}packages/cli/dist/main.js`, "eval", sweep[0]!, runs[1]!, sweep[1]!, "--out", join(dir, "sweep")], { env, timeout: 170_000 });
    console.log(g.stdout);
    guidance = JSON.parse(await readFile(join(dir, "sweep", "report.json"), "utf8")) as EvalReport;
    learned = JSON.parse(await readFile(join(dir, "learned", "report.json"), "utf8")) as EvalReport;
  }, 400_000);
  afterAll(async () => {
    batches?.close();
    await stack?.stop();
  });

  it("the trained prior's served batches pass the permutation test: p ≤ 0.01, own-user score ≥ 0.3 above other users'", () => {
    for (const run of report.runs.slice(0, 2)) {
      expect(run.modelVersion).toBe("demo-v1");
      expect(run.verifier).toBe("oracle");
      expect(run.users).toBe(USERS);
      expect(run.items).toBe(USERS * IMAGES);
      expect(run.permutations).toBe(1000);
      expect(run.p).toBeLessThanOrEqual(0.01);
      expect(run.effect).toBeGreaterThanOrEqual(0.3);
    }
  });

  it("the same batches served with the shuffled-user control prior do not (effect < 0.05)", () => {
    for (const control of report.runs.slice(2)) {
      expect(control.modelVersion).toBe("demo-v1-control");
      expect(Math.abs(control.effect)).toBeLessThan(0.05);
      expect(control.p).toBeGreaterThan(0.01);
    }
  });

  it("prints DDIM 50 beside the paper's 1000-step DDPM (same users and seeds); DDIM is the default only if within 0.02", async () => {
    const [ddpm, ddim] = report.runs;
    expect(ddpm).toMatchObject({ sampler: "ddpm", steps: 1000 });
    expect(ddim).toMatchObject({ sampler: "ddim", steps: 50 });
    expect(report.comparison.baseline).toBe("ddpm-1000");
    const lines = printed.trim().split("\n");
    expect(lines[1]).toMatch(/^ddpm-1000\s+ddpm\s+1000\s+3\.0\s+0\.\d{4}/);
    expect(lines[2]).toMatch(/^ddim-50\s+ddim\s+50\s+3\.0\s+0\.\d{4}/);
    const [verdict] = report.samplers;
    expect(verdict).toMatchObject({ baseline: "ddpm-1000", fast: "ddim-50", within: Math.abs(ddim!.statistic - ddpm!.statistic) <= 0.02 });
    expect(printed).toContain(`ddim-50 vs ddpm-1000: ΔT = `);
    // The shipped default follows the rule.
    for (const version of ["demo-v1", "demo-v1-control"]) {
      const manifest = JSON.parse(await readFile(`${REPO_ROOT}models/${version}/manifest.json`, "utf8")) as { defaults: { sampler: string } };
      expect(manifest.defaults.sampler).toBe(verdict!.within ? "ddim" : "ddpm");
    }
  });

  it("the learned verifier (ONNX) reaches the same verdicts: trained p ≤ 0.01, control effect < 0.05", () => {
    const [trained, control] = learned.runs;
    expect(trained!.verifier).toBe("learned");
    expect(trained!.p).toBeLessThanOrEqual(0.01);
    expect(trained!.effect).toBeGreaterThanOrEqual(0.3);
    expect(Math.abs(control!.effect)).toBeLessThan(0.05);
  });

  it("compares guidance scales side by side: more guidance, more personalization, less diversity", () => {
    const [g1, g3, g7] = guidance.runs;
    expect([g1!.guidance, g3!.guidance, g7!.guidance]).toEqual([1, 3, 7]);
    expect(g3!.statistic).toBeGreaterThan(g1!.statistic);
    expect(g7!.diversity).toBeLessThan(g1!.diversity);
    expect(guidance.comparison.rows.map((r) => r.label)).toEqual(["ddim-50 g=1", "ddim-50 g=3", "ddim-50 g=7"]);
  });

  it("reports retrieval precision/recall@k and writes an HTML report with plots and grids, also beside each manifest", async () => {
    const ddim = report.runs[1]!;
    const at1 = ddim.retrieval.find((r) => r.k === 1)!;
    const control = report.runs[3]!.retrieval.find((r) => r.k === 1)!;
    expect(at1.precision).toBeGreaterThan(control.precision);
    const html = await readFile(join(dir, "report.html"), "utf8");
    expect(html).toContain('aria-label="null distribution"');
    expect(html).toContain('aria-label="per-user scores"');
    expect((html.match(/data:image\/png;base64,/g) ?? []).length).toBeGreaterThan(4 * 12 * IMAGES);
  });
});
