/*
 * Adds made in one turn of the event loop go as one addBulk per kind; a failing bulk falls back to
 * adds one by one so that only a bad job's add fails.
 */
import { describe, expect, it } from "vitest";
import type { JobKind, JobSink } from "@rebeca/contracts";
import { coalesceAdds } from "./coalesced-adds.js";

function recordingSink(bad: (payload: unknown) => boolean = () => false) {
  const calls: { op: "add" | "addBulk"; kind: JobKind; payloads: unknown[] }[] = [];
  const sink = {
    async add(kind: JobKind, payload: unknown) {
      calls.push({ op: "add", kind, payloads: [payload] });
      if (bad(payload)) throw new Error(`bad ${JSON.stringify(payload)}`);
    },
    async addBulk(kind: JobKind, payloads: readonly unknown[]) {
      calls.push({ op: "addBulk", kind, payloads: [...payloads] });
      if (payloads.some(bad)) throw new Error("bad payload in bulk");
    },
  };
  return { calls, sink: sink as unknown as JobSink };
}

const p = (jobId: string) => ({ jobId }) as never;

describe("coalesceAdds", () => {
  it("sends the adds of one turn as one addBulk per kind, and a lone add as an add", async () => {
    const { calls, sink } = recordingSink();
    const jobs = coalesceAdds(sink);
    await Promise.all([jobs.add("decode", p("a")), jobs.add("decode", p("b")), jobs.add("decodeShard", p("c"))]);
    await jobs.add("decode", p("d"));
    expect(calls).toEqual([
      { op: "addBulk", kind: "decode", payloads: [{ jobId: "a" }, { jobId: "b" }] },
      { op: "add", kind: "decodeShard", payloads: [{ jobId: "c" }] },
      { op: "add", kind: "decode", payloads: [{ jobId: "d" }] },
    ]);
  });

  it("falls back to one add per job when the bulk fails, so only the bad job's add rejects", async () => {
    const { calls, sink } = recordingSink((payload) => (payload as { jobId: string }).jobId === "bad");
    const jobs = coalesceAdds(sink);
    const results = await Promise.allSettled([jobs.add("decode", p("a")), jobs.add("decode", p("bad")), jobs.add("decode", p("c"))]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(calls.map((c) => [c.op, c.payloads.length])).toEqual([
      ["addBulk", 3],
      ["add", 1],
      ["add", 1],
      ["add", 1],
    ]);
  });
});
