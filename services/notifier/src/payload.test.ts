import { describe, expect, it } from "vitest";
import { MAX_BODY_BYTES, messageIdOf, outboxEntryToTask } from "./payload.js";
import { callbackJobIdOf, OutboxEntryError } from "@rebeca/contracts";

const job = (over: Record<string, unknown> = {}) => ({
  jobId: "job_1",
  requestId: "r1",
  userId: "u1",
  batchId: "b1",
  state: "succeeded",
  labels: { a: "b" },
  error: null,
  outputs: [
    { index: 0, uri: "s3://b/k.png", width: 8, height: 8, sha256: "f".repeat(64), bytes: 10, contentType: "image/png", embeddingUri: "s3://b/e", seed: 1 },
  ],
  createTime: "t0",
  endTime: "t1",
  ...over,
});
const entry = (j: object) => ({ tenant: "acme", eventId: "17-0", url: "https://h.example/x", type: "job.succeeded", time: "t1", job: JSON.stringify(j) });

describe("outboxEntryToTask", () => {
  it("builds a stable message id and a thin Standard Webhooks body", () => {
    const task = outboxEntryToTask(entry(job()));
    expect(task.messageId).toBe(messageIdOf("acme", "17-0"));
    expect(task.messageId).toBe("msg_acme_17-0");
    expect(JSON.parse(task.body)).toEqual({
      type: "job.succeeded",
      timestamp: "t1",
      data: {
        job_id: "job_1",
        request_id: "r1",
        user_id: "u1",
        batch_id: "b1",
        state: "succeeded",
        labels: { a: "b" },
        error: null,
        outputs: [{ uri: "s3://b/k.png", width: 8, height: 8, sha256: "f".repeat(64), bytes: 10, embedding_uri: "s3://b/e" }],
        create_time: "t0",
        end_time: "t1",
      },
    });
  });

  it("drops outputs rather than exceed 20 KB", () => {
    const many = Array.from({ length: 500 }, (_, i) => ({ ...job().outputs[0], index: i, uri: `s3://bucket/${"x".repeat(40)}/${i}.png` }));
    const task = outboxEntryToTask(entry(job({ outputs: many })));
    expect(Buffer.byteLength(task.body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(JSON.parse(task.body).data).toMatchObject({ outputs: [], outputs_omitted: true });
  });

  it("refuses entries that can never become callbacks", () => {
    expect(() => outboxEntryToTask({ ...entry(job()), url: "" })).toThrow(OutboxEntryError);
    expect(() => outboxEntryToTask({ ...entry(job()), job: "{" })).toThrow(OutboxEntryError);
    expect(() => outboxEntryToTask({ ...entry(job()), url: "not a url" })).toThrow(OutboxEntryError);
  });

  it("makes BullMQ-safe job ids", () => {
    expect(callbackJobIdOf("msg_a:b_1-0")).not.toContain(":");
  });
});
