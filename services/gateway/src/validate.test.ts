import { describe, expect, it } from "vitest";
import { Sampler, TimestepSpacing, UnknownUserPolicy, type CreateJobRequest } from "@rebeca/contracts/grpc";
import { validateBatchParameters, validateCreateJob, ValidationError, type ModelInfo } from "./validate.js";

const model: ModelInfo = { version: "demo-v1", timesteps: 1000, defaults: { guidance: 3, steps: 50, sampler: "ddim" } };
const limits = { maxImagesPerJob: 16, maxGuidance: 50, maxLabels: 16 };
const base: CreateJobRequest = {
  requestId: "r-1",
  userId: "u0001",
  numImages: 2,
  sampler: 0,
  spacing: 0,
  modelVersion: "",
  priority: 0,
  labels: {},
  callbackUrl: "",
  callbackEvents: [],
  unknownUser: 0,
};

const fields = (req: Partial<CreateJobRequest>) => {
  try {
    validateCreateJob({ ...base, ...req }, model, limits, () => 7);
    return [];
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return err.violations.map((v) => v.field);
  }
};

describe("validateCreateJob", () => {
  it("fills the model's defaults and a random seed", () => {
    expect(validateCreateJob(base, model, limits, () => 7)).toMatchObject({
      guidance: 3,
      steps: 50,
      sampler: "ddim",
      seed: 7,
      unknownUser: "reject",
      modelVersion: "demo-v1",
    });
  });

  it("keeps explicit values, including seed 0 and guidance 0", () => {
    const spec = validateCreateJob(
      { ...base, seed: 0, guidance: 0, steps: 20, sampler: Sampler.SAMPLER_DDIM, unknownUser: UnknownUserPolicy.UNKNOWN_USER_POLICY_POPULATION },
      model,
      limits,
      () => 7,
    );
    expect(spec).toMatchObject({ seed: 0, guidance: 0, steps: 20, unknownUser: "population" });
  });

  it("runs DDPM over every timestep whatever steps says", () => {
    expect(validateCreateJob({ ...base, sampler: Sampler.SAMPLER_DDPM, steps: 10 }, model, limits, () => 7).steps).toBe(1000);
  });

  it("takes sampler and spacing from the request, else the manifest's defaults (linspace for older manifests)", () => {
    const fast: ModelInfo = { ...model, defaults: { guidance: 2, steps: 3, sampler: "dpmpp_2m", spacing: "trailing" } };
    expect(validateCreateJob(base, fast, limits, () => 7)).toMatchObject({ sampler: "dpmpp_2m", steps: 3, spacing: "trailing", guidance: 2 });
    expect(validateCreateJob(base, model, limits, () => 7).spacing).toBe("linspace");
    const sde = validateCreateJob(
      { ...base, sampler: Sampler.SAMPLER_DPMPP_2M_SDE, steps: 5, spacing: TimestepSpacing.TIMESTEP_SPACING_LEADING },
      fast,
      limits,
      () => 7,
    );
    expect(sde).toMatchObject({ sampler: "dpmpp_2m_sde", steps: 5, spacing: "leading" });
    // the paper's DDPM visits every timestep: spacing does not apply
    expect(validateCreateJob({ ...base, sampler: Sampler.SAMPLER_DDPM }, fast, limits, () => 7)).toMatchObject({
      sampler: "ddpm",
      steps: 1000,
      spacing: "linspace",
    });
  });

  it("rejects an unknown sampler or spacing by field", () => {
    expect(() => validateCreateJob({ ...base, sampler: 9 as Sampler, spacing: 7 as TimestepSpacing }, model, limits, () => 7)).toThrow(
      expect.objectContaining({
        violations: [
          { field: "sampler", description: "unknown sampler" },
          { field: "spacing", description: "unknown timestep spacing" },
        ],
      }),
    );
  });

  it("deduplicates callback event types", () => {
    expect(validateCreateJob({ ...base, callbackEvents: ["job.failed", "job.failed"] }, model, limits, () => 7).callbackEvents).toEqual(["job.failed"]);
  });

  it.each([
    [{ requestId: "é" }, "request_id"],
    [{ userId: "a b" }, "user_id"],
    [{ numImages: 1.5 }, "num_images"],
    [{ guidance: Number.NaN }, "guidance"],
    [{ guidance: 51 }, "guidance"],
    [{ steps: 1.5 }, "steps"],
    [{ priority: 2.5 }, "priority"],
    [{ labels: { "-x": "1" } }, "labels[-x]"],
    [{ callbackUrl: "http://user:pw@example.com/" }, "callback_url"],
    [{ callbackUrl: `https://example.com/${"x".repeat(2050)}` }, "callback_url"],
  ] as [Partial<CreateJobRequest>, string][])("refuses %j naming %s", (req, field) => {
    expect(fields(req)).toEqual([field]);
  });

  it("refuses more than 16 labels", () => {
    const labels = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    expect(fields({ labels })).toEqual(["labels"]);
  });
});

describe("validateBatchParameters", () => {
  it("names violations by their path in the batch request", () => {
    const model = { version: "demo-v1", timesteps: 1000, defaults: { guidance: 3, steps: 50, sampler: "ddim" as const } };
    const limits = { maxImagesPerJob: 16, maxGuidance: 50, maxLabels: 16 };
    const params = {
      requestId: "",
      numImages: 0,
      sampler: 0,
      spacing: 0,
      modelVersion: "",
      priority: 0,
      labels: {},
      callbackUrl: "ftp://x",
      callbackEvents: [],
      unknownUser: 0,
    };
    try {
      validateBatchParameters(params, model, limits, 8, () => 1);
      expect.fail("accepted");
    } catch (err) {
      expect((err as ValidationError).violations.map((v) => v.field).sort()).toEqual([
        "parameters.callback_url",
        "parameters.num_images",
        "parameters.request_id",
      ]);
    }
  });
});
