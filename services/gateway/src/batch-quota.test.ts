import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createBatchImageQuota } from "./batch-quota.js";
import type { RpcError } from "./errors.js";

/** Reservations that answer from fixed figures and record what they were asked. */
function fakeReservations(used: number, fits: boolean) {
  const calls: string[] = [];
  return {
    calls,
    used: async (tenant: string) => {
      calls.push(`used ${tenant}`);
      return used;
    },
    reserve: async (tenant: string, ask: { batchId: string; images: number }, limit: number) => {
      calls.push(`reserve ${tenant} ${ask.batchId} ${ask.images} ${limit}`);
      return { ok: fits, used: used + ask.images };
    },
  };
}

describe("batch image quota", () => {
  it("reads nothing for a tenant without an images-per-day quota", async () => {
    const r = fakeReservations(0, true);
    const q = createBatchImageQuota({ acme: { concurrentBatches: 2 } }, r);
    await q.precheck("acme", 1_000_000, async () => false);
    await q.reserve("acme", { batchId: "batch_1", images: 1_000_000, numImages: 1 });
    expect(r.calls).toEqual([]);
  });

  it("passes a first chunk that reaches the quota exactly and refuses one image more, with a QuotaFailure", async () => {
    const r = fakeReservations(4, true);
    const q = createBatchImageQuota({ "*": { imagesPerDay: 10 } }, r);
    await q.precheck("acme", 6, async () => false);
    // A repeat of a batch already created is not checked again (its users are reserved).
    await q.precheck("acme", 1000, async () => true);
    const err = (await q.precheck("acme", 7, async () => false).catch((e: unknown) => e)) as RpcError;
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.quotaViolations).toEqual([
      { subject: "tenant:acme", description: "images per day: 4 counted today (made or reserved by running batches), 7 asked, limit 10" },
    ]);
  });

  it("reserves against the tenant's own limit and turns a refusal into RESOURCE_EXHAUSTED", async () => {
    const r = fakeReservations(5, false);
    const q = createBatchImageQuota({ acme: { imagesPerDay: 8 }, "*": { imagesPerDay: 100 } }, r);
    const err = (await q.reserve("acme", { batchId: "batch_1", images: 6, numImages: 2 }).catch((e: unknown) => e)) as RpcError;
    expect(r.calls).toEqual(["reserve acme batch_1 6 8"]);
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.quotaViolations[0]!.description).toBe("images per day: 5 counted today (made or reserved by running batches), 6 asked, limit 8");
  });
});
