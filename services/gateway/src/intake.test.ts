/*
 * The intake's own rules, apart from the services that use it (job-service.test.ts and
 * batch-service.test.ts cover the refusal order through both).
 */
import { describe, expect, it } from "vitest";
import { newId } from "@rebeca/contracts";
import { checkPage, createIntake, DEFAULT_PAGE_SIZE, requireId } from "./intake.js";
import { intakeDeps, MODEL } from "./testing/fakes.js";
import { ValidationError, type FieldViolation } from "./validate.js";

describe("intake", () => {
  it("refuses to start without its default model among the deployed ones", () => {
    const { deps } = intakeDeps({ defaultModel: "demo-v9" });
    expect(() => createIntake(deps)).toThrow('default model version "demo-v9" is not among the deployed ones');
  });

  it("validates against the named model, or the default when none is named", async () => {
    const other = { ...MODEL, version: "demo-v2", timesteps: 10 };
    const { deps } = intakeDeps({
      models: new Map([
        [MODEL.version, MODEL],
        [other.version, other],
      ]),
    });
    const intake = createIntake(deps);
    const seen: string[] = [];
    const validate = (m: typeof MODEL) => (seen.push(m.version), { callbackUrl: "" });
    await intake.admit("acme", "demo-v2", validate, "callback_url");
    await intake.admit("acme", "", validate, "callback_url");
    expect(seen).toEqual(["demo-v2", "demo-v1"]);
  });

  it("checks id shapes per kind and paging into one list", () => {
    expect(() => requireId("job", "job_id", newId("job"))).not.toThrow();
    expect(() => requireId("job", "job_id", newId("batch"))).toThrow(ValidationError);
    const v: FieldViolation[] = [];
    expect(checkPage("batch", { pageSize: 0, pageToken: newId("batch") }, v)).toBe(DEFAULT_PAGE_SIZE);
    expect(v).toEqual([]);
    checkPage("batch", { pageSize: 2.5, pageToken: newId("job") }, v);
    expect(v.map((x) => x.field)).toEqual(["page_size", "page_token"]);
  });
});
