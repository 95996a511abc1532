import { describe, expect, it } from "vitest";
import { decide, prefixOf } from "./retention-sweeper.js";

const now = Date.parse("2026-12-02T18:00:00Z");

describe("retention decisions", () => {
  it("deletes outputs whose lifetime ran out from the end of their work", () => {
    expect(decide({ ended: true, endTime: "2026-12-02T17:00:00.000Z", ttlSeconds: 3600 }, now)).toEqual({ action: "delete" });
  });

  it("waits until end + lifetime for work that ended recently", () => {
    expect(decide({ ended: true, endTime: "2026-12-02T17:30:00.000Z", ttlSeconds: 3600 }, now)).toEqual({ action: "wait", dueMs: now + 1_800_000 });
  });

  it("never deletes outputs of work still running; looks again a whole lifetime later", () => {
    expect(decide({ ended: false, endTime: "", ttlSeconds: 60 }, now)).toEqual({ action: "wait", dueMs: now + 60_000 });
  });

  it("deletes the objects of work whose record has expired from Redis (the lifetime outlived it)", () => {
    expect(decide(null, now)).toEqual({ action: "delete" });
  });

  it("deletes under the owner's own prefix only", () => {
    expect(prefixOf({ kind: "job", tenant: "acme", id: "job_1" })).toBe("tenants/acme/jobs/job_1/");
    expect(prefixOf({ kind: "batch", tenant: "acme", id: "batch_1" })).toBe("tenants/acme/batches/batch_1/");
  });
});
