import { describe, expect, it } from "vitest";
import { JobServiceService } from "@rebeca/contracts/grpc";
import { MalformedMessage, tolerantService, wellFormed } from "./malformed.js";
import { ValidationError } from "./validate.js";

describe("tolerantService", () => {
  const createJob = tolerantService(JobServiceService).createJob;

  it("decodes good bytes as before", () => {
    const bytes = JobServiceService.createJob.requestSerialize({
      requestId: "r1",
      userId: "u1",
      numImages: 2,
      sampler: 0,
      spacing: 0,
      modelVersion: "",
      priority: 0,
      labels: {},
      callbackUrl: "",
      callbackEvents: [],
      unknownUser: 0,
    });
    expect(createJob.requestDeserialize(bytes)).toMatchObject({ requestId: "r1", numImages: 2 });
  });

  it.each([
    ["truncated string", Buffer.from([0x0a, 0x05, 0x61])],
    ["overlong varint", Buffer.from([0x18, ...Array(11).fill(0xff)])],
    ["invalid wire type", Buffer.from([0x0f])],
  ])("turns %s into a marker that the edge answers with INVALID_ARGUMENT", (_name, bytes) => {
    expect(() => JobServiceService.createJob.requestDeserialize(bytes)).toThrow();
    const decoded = createJob.requestDeserialize(bytes);
    expect(decoded).toBeInstanceOf(MalformedMessage);
    expect(() => wellFormed(decoded)).toThrow(ValidationError);
  });
});
