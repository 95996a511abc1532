import { describe, expect, it } from "vitest";
import { createQuotaCheck, parseTenantQuotas, quotaViolations } from "./quota.js";
import { RpcError } from "./errors.js";

describe("tenant quotas", () => {
  it("names every quota a request would pass, counting the request's own images", () => {
    const quota = { imagesPerDay: 10, concurrentBatches: 2, backlog: 5 };
    expect(quotaViolations("acme", quota, { images: 4, batch: false }, { imagesToday: 6, backlog: 4 })).toEqual([]);
    const out = quotaViolations("acme", quota, { images: 5, batch: true }, { imagesToday: 6, activeBatches: 2, backlog: 5 });
    expect(out.map((v) => v.description.split(":")[0])).toEqual(["images per day", "concurrent batches", "backlog"]);
    expect(out.every((v) => v.subject === "tenant:acme")).toBe(true);
  });

  it("reads only what the tenant's quota limits, falls back to '*', and refuses RESOURCE_EXHAUSTED with the violations", async () => {
    const reads: string[] = [];
    const check = createQuotaCheck(parseTenantQuotas('{"acme": {"imagesPerDay": 3}, "*": {"backlog": 1}}'), {
      imagesToday: async () => (reads.push("images"), 2),
      activeBatches: async () => (reads.push("batches"), 0),
      backlog: async () => (reads.push("backlog"), 1),
    });
    await expect(check("acme", { images: 1, batch: true })).resolves.toBeUndefined();
    expect(reads).toEqual(["images"]);
    const err = await check("acme", { images: 2, batch: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).quotaViolations).toHaveLength(1);
    await expect(check("globex", { images: 1, batch: false })).rejects.toThrow(/backlog: 1 unfinished jobs, limit 1/);
  });

  it("refuses a malformed TENANT_QUOTAS at start, naming the problem", () => {
    expect(() => parseTenantQuotas("{")).toThrow(/not JSON/);
    expect(() => parseTenantQuotas('{"acme": {"imagesPerDay": -1}}')).toThrow(/acme.imagesPerDay/);
    expect(() => parseTenantQuotas('{"acme": {"imagesPerHour": 1}}')).toThrow(/acme/);
  });
});
