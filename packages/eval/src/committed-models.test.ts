/*
 * The statistical checks of the models issue, run on the committed artifacts with the serving
 * code (onnxruntime-node sampler) and the demo world's exact oracle verifier:
 * trained prior p ≤ 0.01 with own-user P(like) ≥ 0.3 above other users'; users fitted later by
 * add-users personalized by the same statistics; the shuffled-user control's effect < 0.05.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createOnnxPrior, createOnnxSession, createPriorSampler, loadPriorModelFiles } from "@rebeca/inference";
import { oracleLikeProbability, type DemoUser } from "./oracle.js";
import { personalizationTest } from "./permutation.js";

const MODELS = fileURLToPath(new URL("../../../models/", import.meta.url));
const world = JSON.parse(readFileSync(`${MODELS}demo-v1/world/users.json`, "utf8")) as { users: DemoUser[] };
const ITEMS_PER_USER = 10;

async function evaluate(version: string, users: DemoUser[]) {
  const files = await loadPriorModelFiles(`${MODELS}${version}/manifest.json`);
  const { session } = await createOnnxSession(files.prior.bytes, { providers: ["cpu"], intraOpThreads: 1 });
  const sampler = createPriorSampler({ model: createOnnxPrior(session, { embeddingDim: files.manifest.embedding_dim, userDim: files.manifest.user_dim }), userTable: files.userTable, manifest: files.manifest });
  const rows = users.map((u) => {
    const row = files.userTable.rowOf(u.id);
    if (row === undefined) throw new Error(`${u.id} is not in ${version}`);
    return row;
  });
  const seeds = rows.flatMap((_, k) => Array.from({ length: ITEMS_PER_USER }, (_, i) => 100_000 + k * ITEMS_PER_USER + i));
  const labels = rows.flatMap((_, k) => Array(ITEMS_PER_USER).fill(k) as number[]);
  const embeddings = await sampler.sample({ userRow: labels.map((k) => rows[k]!), seeds, guidance: 3, steps: 50, sampler: "ddim" });
  const D = files.manifest.embedding_dim;
  return personalizationTest({ users: users.length, labels, score: (u, i) => oracleLikeProbability(users[u]!, embeddings.subarray(i * D, (i + 1) * D)) }, 1000);
}

describe("committed demo models (oracle verifier, DDIM 50, g = 3, 10 items per user, B = 1000)", () => {
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

  it("add-users left prior.onnx byte-identical (its sha256 before adding equals the shipped one)", async () => {
    const manifest = JSON.parse(readFileSync(`${MODELS}demo-v1/manifest.json`, "utf8"));
    const runs = (manifest.training?.added_users ?? []) as { prior_sha256_before?: string }[];
    expect(runs.length, "demo-v1 must have users added by add-users").toBeGreaterThan(0);
    for (const run of runs) expect(run.prior_sha256_before).toBe(manifest.files.prior.sha256);
  });
});
