/*
 * Served-output evaluation with the trained latent-diffusion decoder: 50 demo users × 8 images are
 * served end to end (gateway → prior → decoder worker running demo-v2's UNet + VAE → S3) with the
 * trained prior (demo-v2) and the shuffled-user control prior paired with the same decoder
 * (demo-v2-control), then `rebeca eval` re-encodes the PNGs with the committed encoder, scores them
 * with the oracle and the learned verifier and runs the permutation test (B = 1000), unchanged.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunksOf, createBatchClient, REPO_ROOT, startStack, type BatchClient, type Stack } from "@rebeca/devstack";
import type { EvalReport } from "@rebeca/eval";
import { untilBatchCompleted } from "../support/wait.js";
import { modelUserIds } from "../support/world.js";

const run = promisify(execFile);
const USERS = 50;
const IMAGES = 8;

describe("rebeca eval on batches served with the trained latent-diffusion decoder (demo-v2)", () => {
  let stack: Stack;
  let batches: BatchClient;
  let oracle: EvalReport;
  let learned: EvalReport;
  const ids = modelUserIds("demo-v2-control").slice(0, USERS);

  beforeAll(async () => {
    stack = await startStack({ tenants: ["acme"], services: ["gateway", "prior-worker", "decoder-worker"], env: { gateway: { SHARD_SIZE: "25" } } });
    batches = createBatchClient(stack.grpcAddress, stack.tenants.acme!.apiKey);
    const dir = await mkdtemp(join(tmpdir(), "rebeca-eval-latent-"));
    // The prior's default sampler, as the demo serves (samplers are evaluation.test.ts's subject; the decoder is this suite's).
    const serve = async (requestId: string, modelVersion: string) =>
      (await batches.createBatch({ requestId, numImages: IMAGES, seed: 7, modelVersion }, chunksOf(ids, 50))).batchId;
    const started = Date.now();
    const runs = [await serve("eval-v2", "demo-v2"), await serve("eval-v2-control", "demo-v2-control")];
    for (const id of runs) await untilBatchCompleted(batches, id, 400_000);
    const served = (Date.now() - started) / 1000;
    const env = {
      ...process.env,
      REBECA_ADDRESS: stack.grpcAddress,
      REBECA_API_KEY: stack.tenants.acme!.apiKey,
      S3_ENDPOINT: stack.s3.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      MODELS_DIR: `${REPO_ROOT}models`,
    };
    const cli = `${REPO_ROOT}packages/cli/dist/main.js`;
    const o = await run(process.execPath, [cli, "eval", ...runs, "--label", "demo-v2", "--label", "demo-v2-control", "--out", dir], { env, timeout: 170_000 });
    console.log(`served 2 × ${USERS} users × ${IMAGES} images through the diffusion decoder in ${served.toFixed(1)} s\n${o.stdout}`);
    oracle = JSON.parse(await readFile(join(dir, "report.json"), "utf8")) as EvalReport;
    const l = await run(
      process.execPath,
      [cli, "eval", ...runs, "--verifier", "learned", "--label", "demo-v2 (learned)", "--label", "demo-v2-control (learned)", "--out", join(dir, "learned")],
      { env, timeout: 170_000 },
    );
    console.log(l.stdout);
    learned = JSON.parse(await readFile(join(dir, "learned", "report.json"), "utf8")) as EvalReport;
  }, 900_000);
  afterAll(async () => {
    batches?.close();
    await stack?.stop();
  });

  it("the trained prior's images pass the permutation test: p ≤ 0.01 (B = 1000), oracle own − others ≥ 0.3", () => {
    const [trained] = oracle.runs;
    expect(trained).toMatchObject({ modelVersion: "demo-v2", verifier: "oracle", users: USERS, items: USERS * IMAGES, permutations: 1000 });
    expect(trained!.p).toBeLessThanOrEqual(0.01);
    expect(trained!.effect).toBeGreaterThanOrEqual(0.3);
  });

  it("the shuffled-user control prior with the same decoder still fails (p > 0.01, |effect| < 0.05)", () => {
    const control = oracle.runs[1]!;
    expect(control.modelVersion).toBe("demo-v2-control");
    expect(control.p).toBeGreaterThan(0.01);
    expect(Math.abs(control.effect)).toBeLessThan(0.05);
  });

  it("the learned verifier (its own pixel features) reaches the same verdicts", () => {
    const [trained, control] = learned.runs;
    expect(trained!.verifier).toBe("learned");
    expect(trained!.p).toBeLessThanOrEqual(0.01);
    expect(control!.p).toBeGreaterThan(0.01);
  });
});
