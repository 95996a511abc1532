import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { encodeStatusDetails } from "../errors.js";
import { httpStatusOf, retryAfterSeconds, statusJson } from "./status-json.js";

describe("google.rpc.Status as JSON", () => {
  it("spells out the field violations the gRPC edge encodes", () => {
    const violations = [
      { field: "num_images", description: "must be 1..16" },
      { field: "labels", description: "too many" },
    ];
    const bin = encodeStatusDetails(status.INVALID_ARGUMENT, "invalid request", violations);
    expect(statusJson(status.INVALID_ARGUMENT, "invalid request", bin)).toEqual({
      code: 3,
      message: "invalid request",
      details: [{ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: violations }],
    });
  });

  it("carries RetryInfo, rounded up into Retry-After", () => {
    const json = statusJson(status.RESOURCE_EXHAUSTED, "slow down", encodeStatusDetails(status.RESOURCE_EXHAUSTED, "slow down", [], 1.5));
    expect(json.details).toEqual([{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1.5s" }]);
    expect(retryAfterSeconds(json)).toBe(2);
  });

  it("has no details when the server sent none", () => {
    expect(statusJson(status.NOT_FOUND, "no such job")).toEqual({ code: 5, message: "no such job", details: [] });
  });

  it("maps codes to HTTP statuses as google.rpc.Code documents", () => {
    expect([status.INVALID_ARGUMENT, status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.NOT_FOUND].map(httpStatusOf)).toEqual([400, 401, 403, 404]);
    expect([status.RESOURCE_EXHAUSTED, status.UNAVAILABLE, status.INTERNAL, status.ALREADY_EXISTS].map(httpStatusOf)).toEqual([429, 503, 500, 409]);
  });
});
