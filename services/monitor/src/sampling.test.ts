import { describe, expect, it } from "vitest";
import { referenceUsers, sampled, tasksFromResults, workFromEvent } from "./sampling.js";

describe("sampled", () => {
  it("keeps about `rate` of keys, the same ones every time", () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `job_${i}`);
    const kept = keys.filter((k) => sampled(k, 0.1));
    expect(kept.length / keys.length).toBeGreaterThan(0.09);
    expect(kept.length / keys.length).toBeLessThan(0.11);
    expect(keys.filter((k) => sampled(k, 0.1))).toEqual(kept);
    expect(keys.every((k) => sampled(k, 1))).toBe(true);
    expect(keys.some((k) => sampled(k, 0))).toBe(false);
  });
});

const job = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    jobId: "job_1",
    userId: "u1",
    modelVersion: "demo-v1",
    populationPrior: false,
    outputs: [{ uri: "s3://b/k/0.png" }, { uri: "s3://b/k/1.png" }],
    ...over,
  });

describe("workFromEvent", () => {
  it("turns a succeeded job into one task with its images", () => {
    expect(workFromEvent("acme", { type: "job.succeeded", job: job() }, 1)).toEqual({
      tasks: [{ tenant: "acme", modelVersion: "demo-v1", userId: "u1", imageUris: ["s3://b/k/0.png", "s3://b/k/1.png"], key: "job_1" }],
    });
  });

  it("ignores other job events, population-prior jobs and unsampled jobs", () => {
    expect(workFromEvent("acme", { type: "job.sampling", job: job() }, 1)).toEqual({ tasks: [] });
    expect(workFromEvent("acme", { type: "job.succeeded", job: job({ populationPrior: true }) }, 1)).toEqual({ tasks: [] });
    expect(workFromEvent("acme", { type: "job.succeeded", job: job() }, 0)).toEqual({ tasks: [] });
  });

  it("asks for the shard results of a completed batch with succeeded users", () => {
    const doc = JSON.stringify({ batchId: "batch_1", tenant: "acme", requestId: "r", spec: { modelVersion: "demo-v1-control" }, createTime: "" });
    const done = { type: "batch.completed", doc, state: "completed", manifest: "s3://b/m.jsonl", succeeded: "30", shards_total: "4" };
    expect(workFromEvent("acme", done, 0.5)).toEqual({ batch: { batchId: "batch_1", modelVersion: "demo-v1-control", tenant: "acme", shards: 4 } });
    expect(workFromEvent("acme", { ...done, succeeded: "0" }, 0.5)).toEqual({ tasks: [] });
    expect(workFromEvent("acme", done, 0)).toEqual({ tasks: [] });
    expect(workFromEvent("acme", { type: "batch.progress", doc, state: "running", manifest: "" }, 1)).toEqual({ tasks: [] });
  });
});

describe("tasksFromResults", () => {
  it("samples users with images by batch position, skipping failures and the population prior", () => {
    const lines = [
      { user_id: "a", position: 0, images: [{ uri: "s3://b/0.png", sha256: "", bytes: 1, width: 1, height: 1, seed: 1 }] },
      { user_id: "b", position: 1, error: { code: "UNKNOWN_USER", message: "" } },
      { user_id: "c", position: 2, population_prior: true, images: [{ uri: "s3://b/2.png", sha256: "", bytes: 1, width: 1, height: 1, seed: 1 }] },
    ];
    const tasks = tasksFromResults({ batchId: "batch_1", modelVersion: "demo-v1", tenant: "acme" }, lines, 1);
    expect(tasks.map((t) => [t.userId, t.key, t.imageUris])).toEqual([["a", "batch_1:0", ["s3://b/0.png"]]]);
  });

  it("scores each user of a canary batch under the version its line says served it", () => {
    const image = { uri: "s3://b/0.png", sha256: "", bytes: 1, width: 1, height: 1, seed: 1 };
    const lines = [
      { user_id: "a", position: 0, images: [image], model_version: "demo-v1" },
      { user_id: "b", position: 1, images: [image], model_version: "demo-v1-r2" },
      { user_id: "c", position: 2, images: [image] },
    ];
    const tasks = tasksFromResults({ batchId: "batch_1", modelVersion: "demo-v1", tenant: "acme" }, lines, 1);
    expect(tasks.map((t) => [t.userId, t.modelVersion])).toEqual([
      ["a", "demo-v1"],
      ["b", "demo-v1-r2"],
      ["c", "demo-v1"],
    ]);
  });
});

describe("referenceUsers", () => {
  it("picks distinct users other than the user, the same for the same user", () => {
    const known = Array.from({ length: 100 }, (_, i) => `u${i}`);
    const r = referenceUsers("u5", known, 16);
    expect(r).toHaveLength(16);
    expect(new Set(r).size).toBe(16);
    expect(r).not.toContain("u5");
    expect(referenceUsers("u5", known, 16)).toEqual(r);
    expect(referenceUsers("u6", known, 16)).not.toEqual(r);
    expect(referenceUsers("u1", ["u1", "u2"], 16)).toEqual(["u2"]);
  });
});
