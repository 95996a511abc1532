import { describe, expect, it } from "vitest";
import { parseRecall, recallMember, recallMessages, type Recall } from "./recalls.js";

describe("user_data.erased messages", () => {
  it("tells each endpoint once which jobs and batches to delete copies of, with stable ids and no user ids", () => {
    const recalls: Recall[] = [
      { url: "https://a.example/hook", kind: "job", id: "job_2" },
      { url: "https://b.example/hook", kind: "batch", id: "batch_1" },
      { url: "https://a.example/hook", kind: "job", id: "job_1" },
      { url: "https://a.example/hook", kind: "batch", id: "batch_1" },
    ];
    const out = recallMessages("erasure_9", "2026-12-03T00:00:00.000Z", recalls);
    expect(out.map((m) => [m.eventId, m.url])).toEqual([
      ["erasure_9-erased-0", "https://a.example/hook"],
      ["erasure_9-erased-1", "https://b.example/hook"],
    ]);
    const body = JSON.parse(out[0]!.body) as { type: string; data: Record<string, unknown> };
    expect(body.type).toBe("user_data.erased");
    expect(body.data).toMatchObject({ deletion_id: "erasure_9", job_ids: ["job_1", "job_2"], batch_ids: ["batch_1"] });
    // The same recalls in another order give the same messages (a repeated finish is deduplicated by id).
    expect(recallMessages("erasure_9", "2026-12-03T00:00:00.000Z", [...recalls].reverse())).toEqual(out);
  });

  it("pages an endpoint's ids so each message stays thin", () => {
    const many = Array.from({ length: 1000 }, (_, i): Recall => ({ url: "https://a.example/hook", kind: "job", id: `job_${String(i).padStart(4, "0")}` }));
    const out = recallMessages("e", "t", many);
    expect(out).toHaveLength(3);
    for (const m of out) expect(m.body.length).toBeLessThan(20_000);
    expect(out.flatMap((m) => (JSON.parse(m.body) as { data: { job_ids: string[] } }).data.job_ids)).toHaveLength(1000);
  });

  it("round-trips a recall through its set member (URLs may hold any character)", () => {
    const r: Recall = { url: 'https://a.example/h?x=1&y="2"', kind: "batch", id: "batch_1" };
    expect(parseRecall(recallMember(r))).toEqual(r);
  });
});
