import { describe, expect, it } from "vitest";
import type { JobRecord } from "@rebeca/contracts";
import { applyTransition, callbackWanted, eventFields, newJobRecord, parseEvent } from "./records.js";

const record: JobRecord = newJobRecord({
  jobId: "job_1",
  tenant: "acme",
  requestId: "r",
  spec: {
    userId: "u",
    numImages: 1,
    guidance: 3,
    steps: 50,
    sampler: "ddim",
    seed: 1,
    modelVersion: "m",
    priority: 0,
    labels: {},
    callbackUrl: "",
    callbackEvents: [],
    unknownUser: "reject",
  },
  now: "2026-01-01T00:00:00.000Z",
});

describe("records", () => {
  it("sets start time on the first working state and end time on a terminal one", () => {
    const sampling = applyTransition(record, "sampling", {}, "T1");
    expect(sampling).toMatchObject({ state: "sampling", startTime: "T1", endTime: "", updateTime: "T1" });
    const decoding = applyTransition(sampling, "decoding", {}, "T2");
    expect(decoding.startTime).toBe("T1");
    expect(applyTransition(decoding, "succeeded", {}, "T3")).toMatchObject({ endTime: "T3", startTime: "T1" });
    expect(applyTransition(record, "cancelled", {}, "T4")).toMatchObject({ startTime: "", endTime: "T4" });
  });

  it("wants callbacks for terminal events by default, for the filter's types when given, never without a URL", () => {
    expect(callbackWanted(record, "job.succeeded")).toBe(false);
    const withUrl = { ...record, callbackUrl: "https://x.example/h" };
    expect(callbackWanted(withUrl, "job.succeeded")).toBe(true);
    expect(callbackWanted(withUrl, "job.sampling")).toBe(false);
    expect(callbackWanted({ ...withUrl, callbackEvents: ["job.sampling"] }, "job.sampling")).toBe(true);
    expect(callbackWanted({ ...withUrl, callbackEvents: ["job.sampling"] }, "job.succeeded")).toBe(false);
  });

  it("round-trips an event through stream fields", () => {
    const e = parseEvent("acme", "1-0", eventFields(applyTransition(record, "sampling", {}, "T1")));
    expect(e).toMatchObject({ eventId: "1-0", type: "job.sampling", time: "T1", tenant: "acme", jobId: "job_1", state: "sampling" });
  });
});
