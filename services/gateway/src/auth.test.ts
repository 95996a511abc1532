import { Metadata, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createAuthenticator, hashApiKey } from "./auth.js";
import { RpcError } from "./errors.js";

const md = (value?: string) => {
  const m = new Metadata();
  if (value !== undefined) m.set("authorization", value);
  return m;
};

describe("createAuthenticator", () => {
  const authenticate = createAuthenticator([
    { tenant: "acme", sha256: hashApiKey("key-a") },
    { tenant: "globex", sha256: hashApiKey("key-g") },
  ]);

  it("maps a bearer key to its tenant", () => {
    expect(authenticate(md("Bearer key-a"))).toBe("acme");
    expect(authenticate(md("bearer key-g"))).toBe("globex");
  });

  it.each([undefined, "", "key-a", "Basic key-a", "Bearer key-b", "Bearer key-a extra"])("refuses %j as UNAUTHENTICATED", (value) => {
    try {
      authenticate(md(value));
      expect.fail("accepted");
    } catch (err) {
      expect(err).toBeInstanceOf(RpcError);
      expect((err as RpcError).code).toBe(status.UNAUTHENTICATED);
    }
  });

  it("refuses a configuration with a bad tenant name or hash", () => {
    expect(() => createAuthenticator([{ tenant: "Acme Corp", sha256: hashApiKey("x") }])).toThrow(/tenant/);
    expect(() => createAuthenticator([{ tenant: "acme", sha256: "plaintext" }])).toThrow(/sha256/);
  });
});
