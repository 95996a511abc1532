import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { BatchRecord } from "@rebeca/contracts";
import { canSee, cookieValue, createKeyCheck } from "./auth.js";
import { batchesPage, batchPage, formatDuration, galleryPage, loginPage, progress } from "./pages.js";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("console keys", () => {
  const check = createKeyCheck({
    apiKeys: [
      { tenant: "acme", sha256: sha("rk_acme") },
      { tenant: "globex", sha256: sha("rk_globex") },
    ],
    adminKeys: [sha("rk_admin")],
  });

  it("maps the admin key to admin, API keys to their tenant, anything else to nobody", () => {
    expect(check("rk_admin")).toEqual({ role: "admin" });
    expect(check("rk_acme")).toEqual({ role: "tenant", tenant: "acme" });
    expect(check("rk_globex")).toEqual({ role: "tenant", tenant: "globex" });
    expect(check("rk_acme ")).toBeNull();
    expect(check("")).toBeNull();
  });

  it("refuses configured keys that are not sha256 digests", () => {
    expect(() => createKeyCheck({ apiKeys: [], adminKeys: ["abc"] })).toThrow(/sha256/);
  });

  it("lets a tenant see only itself and the admin everything", () => {
    expect(canSee({ role: "tenant", tenant: "acme" }, "acme")).toBe(true);
    expect(canSee({ role: "tenant", tenant: "acme" }, "globex")).toBe(false);
    expect(canSee({ role: "admin" }, "globex")).toBe(true);
  });

  it("reads one cookie from a Cookie header", () => {
    expect(cookieValue("a=1; rebeca_console=xyz; b=2", "rebeca_console")).toBe("xyz");
    expect(cookieValue("rebeca_console_x=1", "rebeca_console")).toBeUndefined();
    expect(cookieValue(undefined, "rebeca_console")).toBeUndefined();
  });
});

const batch = (over: Partial<BatchRecord> = {}): BatchRecord => ({
  batchId: "batch_1",
  tenant: "acme",
  requestId: "<script>alert(1)</script>",
  state: "running",
  spec: {
    numImages: 3,
    guidance: 3,
    steps: 50,
    sampler: "ddim",
    seed: 1,
    modelVersion: "demo-v1",
    priority: 0,
    labels: {},
    callbackUrl: "",
    callbackEvents: [],
    unknownUser: "reject",
    shardSize: 8,
  },
  counts: { total: 40, received: 40, succeeded: 9, failed: 1, cancelled: 0, expired: 0, shardsTotal: 5, shardsDone: 1 },
  createTime: "2026-11-25T20:00:00Z",
  runningTime: "2026-11-25T20:00:01Z",
  endTime: "",
  resultManifestUri: "",
  error: null,
  ...over,
});

describe("console pages", () => {
  const who = { role: "tenant", tenant: "acme" } as const;

  it("shows progress, ETA and auto-refresh for running batches, escaping every value", () => {
    expect(progress(batch())).toEqual({ done: 10, total: 40, fraction: 0.25 });
    const html = batchesPage(who, [{ record: batch(), eta: 200 }]);
    expect(html).toContain('data-batch="batch_1"');
    expect(html).toContain("10/40");
    expect(html).toContain("3m 20s");
    expect(html).toContain('http-equiv="refresh"');
    expect(html).not.toContain("<script>");
    expect(html).not.toContain('href="/queues/"');
    expect(batchesPage({ role: "admin" }, [])).toContain('href="/queues/"');
  });

  it("links users with images to their gallery and shows the evaluation summary", () => {
    const done = batch({ state: "completed", counts: { ...batch().counts, succeeded: 39, failed: 1 } });
    const html = batchPage(
      who,
      done,
      0,
      [
        { position: 0, userId: "u1", images: 3 },
        { position: 1, userId: "nobody", images: 0, error: "UNKNOWN_USER" },
      ],
      false,
      { statistic: 0.91, p: 0.001, effect: 0.54, verifier: "oracle" },
    );
    expect(html).toContain('href="/batches/acme/batch_1/users/0"');
    expect(html).not.toContain("/users/1");
    expect(html).toContain("T = 0.910, p = 0.0010");
    expect(html).not.toContain('http-equiv="refresh"');
    expect(batchPage(who, done, 0, [], false)).toContain("rebeca eval batch_1 --upload");
  });

  it("renders one image per generated output in the gallery", () => {
    const html = galleryPage(who, batch(), 7, "u<7>", 3);
    expect(html.match(/<img /g)).toHaveLength(3);
    expect(html).toContain('src="/objects/acme/batch_1/7/2.png"');
    expect(html).toContain("u&#60;7&#62;");
  });

  it("formats durations and shows login errors", () => {
    expect(formatDuration(0)).toBe("");
    expect(formatDuration(45)).toBe("45s");
    expect(formatDuration(7300)).toBe("2h 1m");
    expect(loginPage("bad key")).toContain('role="alert"');
  });
});
