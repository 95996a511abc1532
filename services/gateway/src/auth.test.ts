import * as crypto from "node:crypto";
import { Metadata, status } from "@grpc/grpc-js";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { createAuthenticator, hashApiKey } from "./auth.js";
import { RpcError } from "./errors.js";

// Pass-through spy: behaviour unchanged, but the test can see every comparison the code makes.
vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:crypto")>();
  return { ...real, timingSafeEqual: vi.fn((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => real.timingSafeEqual(a, b)) };
});
const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);

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

describe("constant-time key comparison", () => {
  const keys = ["key-first", "key-middle", "key-last"];
  const authenticate = createAuthenticator(keys.map((k, i) => ({ tenant: `t${i}`, sha256: hashApiKey(k) })));
  beforeEach(() => {
    timingSafeEqual.mockClear();
  });

  it.each(keys)("compares %s with every entry, by 32-byte digests, whichever entry matches", (key) => {
    expect(authenticate(md(`Bearer ${key}`))).toBe(`t${keys.indexOf(key)}`);
    expect(timingSafeEqual).toHaveBeenCalledTimes(keys.length);
    for (const [a, b] of timingSafeEqual.mock.calls) expect([(a as Buffer).length, (b as Buffer).length]).toEqual([32, 32]);
  });

  const wrong = [
    "k",
    "key-firs",
    "key-firstx",
    "KEY-FIRST",
    "x".repeat(31),
    "x".repeat(32),
    "x".repeat(64),
    "x".repeat(65),
    "x".repeat(10_000),
    "~!@#$%^&*()_+{}|:<>?",
    hashApiKey("key-first"),
  ];
  it.each(wrong.map((w) => [w.length, w]))("refuses a wrong key of length %i as UNAUTHENTICATED after the same comparisons", (_len, key) => {
    expect(() => authenticate(md(`Bearer ${key}`))).toThrow(expect.objectContaining({ code: status.UNAUTHENTICATED, message: "invalid api key" }));
    expect(timingSafeEqual).toHaveBeenCalledTimes(keys.length);
  });

  it.each(["Bearer key-first ", "Bearer  ", "Bearer key first", "key-first"])("refuses the malformed header %j before any comparison", (header) => {
    expect(() => authenticate(md(header))).toThrow(expect.objectContaining({ code: status.UNAUTHENTICATED }));
    expect(timingSafeEqual).not.toHaveBeenCalled();
  });
});
