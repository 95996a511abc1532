import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { JOB_ERROR_CODES } from "./index.js";

const root = new URL("../../../", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
/** Every quoted/back-quoted UPPER_CASE word of a text. */
const codesIn = (text: string) => new Set([...text.matchAll(/["`]([A-Z][A-Z_]+[A-Z])["`]/g)].map((m) => m[1]));

describe("JobError codes", () => {
  const emitted = new Set(Object.values(JOB_ERROR_CODES));

  it("the proto documents exactly the codes the services emit", () => {
    const comment = /message JobError \{\s*((?:\s*\/\/.*\n)+)/.exec(read("proto/rebeca/v1/jobs.proto"))![1];
    expect(codesIn(comment)).toEqual(emitted);
  });

  it("docs/api.md lists exactly the codes the services emit", () => {
    const line = /`error` has a stable `code` \(([^)]*)\)/.exec(read("docs/api.md"))![1];
    expect(codesIn(line)).toEqual(emitted);
  });

  it("the workers fail jobs with the listed codes, not string copies of them", () => {
    expect(read("services/decoder-worker/src/decoder-worker.ts")).toContain("JOB_ERROR_CODES.DECODING_FAILED");
    expect(read("services/prior-worker/src/prior-worker.ts")).toContain("JOB_ERROR_CODES.SAMPLING_FAILED");
  });
});
