import { describe, expect, it } from "vitest";
import { decodeEmbeddings, encodeEmbeddings, fromInlineEmbeddings, toInlineEmbeddings } from "./embeddings.js";
import { evalReportUri, objectKeys } from "./keys.js";
import { BATCH_FIELDS, fieldsToObject, OUTBOX_FIELDS, OutboxEntryError, outboxFields, parseOutboxEntry } from "./outbox.js";
import { webhookBody } from "./webhooks.js";

describe("embedding codec", () => {
  it("round-trips float32 exactly, little-endian, also inline and from a view into a larger buffer", () => {
    const values = new Float32Array([0, -1.5, 3.4028234663852886e38, 1e-45, Math.PI]);
    const bytes = encodeEmbeddings(values);
    expect(bytes.byteLength).toBe(20);
    expect([...bytes.subarray(4, 8)]).toEqual([0, 0, 0xc0, 0xbf]); // -1.5 LE
    expect(decodeEmbeddings(bytes)).toEqual(values);
    expect(decodeEmbeddings(fromInlineEmbeddings(toInlineEmbeddings(bytes)))).toEqual(values);
    const framed = new Uint8Array(28);
    framed.set(bytes, 4);
    expect(decodeEmbeddings(framed.subarray(4, 24))).toEqual(values);
    expect(toInlineEmbeddings(framed.subarray(4, 24))).toBe(toInlineEmbeddings(bytes));
    const wide = new Float32Array(7);
    wide.set(values, 1);
    expect(encodeEmbeddings(wide.subarray(1, 6))).toEqual(bytes); // only the view's floats
  });
  it("refuses bytes that are not whole floats", () => {
    expect(() => decodeEmbeddings(new Uint8Array(6))).toThrow(/whole number/);
  });
});

describe("eval report key", () => {
  it("derives the same place from the tenant and batch and from the manifest's URI", () => {
    const uri = (key: string) => `s3://bucket/${key}`;
    expect(evalReportUri(uri(objectKeys.batchManifest("acme", "batch_1")), "report.json")).toBe(uri(objectKeys.evalReport("acme", "batch_1", "report.json")));
    expect(() => evalReportUri("s3://bucket/tenants/acme/jobs/x/0.png", "report.json")).toThrow(/not a batch result manifest/);
  });
});

describe("webhook envelope", () => {
  it("is {type, timestamp, data}", () => {
    expect(JSON.parse(webhookBody("user.succeeded", "t", { batch_id: "b" }))).toEqual({ type: "user.succeeded", timestamp: "t", data: { batch_id: "b" } });
  });
});

describe("outbox entries", () => {
  const base = { tenant: "acme", eventId: "1-0", url: "https://h.example/x", type: "user.failed", time: "t" };

  it("write every field of their kind in the contract's order and read back", () => {
    const fields = outboxFields("user", { ...base, body: "{}", traceparent: "" });
    expect(fields.filter((_, i) => i % 2 === 0)).toEqual([...OUTBOX_FIELDS.user]);
    expect(parseOutboxEntry(fieldsToObject(fields))).toEqual({ kind: "user", ...base, body: "{}", traceparent: "" });
    const job = parseOutboxEntry(
      fieldsToObject(outboxFields("job", { ...base, type: "job.succeeded", job: JSON.stringify({ jobId: "job_1", state: "succeeded" }) })),
    );
    expect(job).toMatchObject({ kind: "job", job: { jobId: "job_1", state: "succeeded" } });
  });

  it("reads job entries written before entries had a kind", () => {
    const { kind: _, ...old } = fieldsToObject(outboxFields("job", { ...base, job: JSON.stringify({ jobId: "job_1" }) }));
    expect(parseOutboxEntry(old).kind).toBe("job");
  });

  it("reads a batch's fields inline", () => {
    const doc = { batchId: "b1", tenant: "acme", requestId: "r", spec: { labels: {} }, createTime: "t0" };
    const batchValues = Object.fromEntries(BATCH_FIELDS.map((f) => [f, ""])) as Record<(typeof BATCH_FIELDS)[number], string>;
    const entry = parseOutboxEntry(
      fieldsToObject(outboxFields("batch", { ...base, ...batchValues, doc: JSON.stringify(doc), state: "completed", total: "5", succeeded: "4", failed: "1" })),
    );
    expect(entry).toMatchObject({ kind: "batch", batch: { batchId: "b1", state: "completed", counts: { total: 5, succeeded: 4, failed: 1, cancelled: 0 } } });
  });

  it("refuses entries that lack fields, hold broken JSON or name an unknown kind", () => {
    const job = fieldsToObject(outboxFields("job", { ...base, job: JSON.stringify({ jobId: "job_1" }) }));
    expect(() => parseOutboxEntry({ ...job, url: "" })).toThrow(/lacks url/);
    expect(() => parseOutboxEntry({ ...job, job: "{" })).toThrow(OutboxEntryError);
    expect(() => parseOutboxEntry({ ...job, job: "{}" })).toThrow(/without jobId/);
    expect(() => parseOutboxEntry({ ...job, kind: "batch" })).toThrow(/lacks doc/);
    expect(() => parseOutboxEntry({ ...job, kind: "shard" })).toThrow(/unknown kind/);
  });
});
