import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { safeText, toServiceError } from "./errors.js";
import { ValidationError } from "./validate.js";

describe("toServiceError", () => {
  it("never hands grpc-js a message encodeURI refuses (a lone surrogate crashed the gateway)", () => {
    // A label key of emoji cut at 64 UTF-16 units ends in half a surrogate pair.
    const key = "a" + "𝕏".repeat(40);
    const err = toServiceError(new ValidationError([{ field: `labels[${key.slice(0, 64)}]`, description: "bad key \udc00" }]));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(() => encodeURI(err.details)).not.toThrow();
    expect(err.details).toContain("\ufffd");
  });

  it("keeps well-formed text, including surrogate pairs, and bounds the length", () => {
    expect(safeText("ok 𝕏 é")).toBe("ok 𝕏 é");
    expect(safeText("\ud800x\udfff")).toBe("\ufffdx\ufffd");
    expect(safeText("y".repeat(5000)).length).toBeLessThanOrEqual(1025);
  });

  it("maps unknown errors to INTERNAL without their message", () => {
    const err = toServiceError(new Error("secret internals"));
    expect(err.code).toBe(status.INTERNAL);
    expect(err.details).toBe("internal error");
  });
});
