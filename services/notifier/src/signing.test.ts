import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { parseSecret, signatureHeader, webhookHeaders } from "./signing.js";

const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

describe("signing", () => {
  it("verifies with the standardwebhooks library", () => {
    const secret = newSecret();
    const body = JSON.stringify({ type: "job.succeeded", timestamp: "2025-01-01T00:00:00Z", data: { job_id: "job_1" } });
    const headers = webhookHeaders([parseSecret(secret)], "msg_t_1-0", Math.floor(Date.now() / 1000), body);
    expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: "job.succeeded" });
  });

  it("signs with every active secret during rotation; either verifies", () => {
    const [a, b] = [newSecret(), newSecret()];
    const body = "{}";
    const headers = webhookHeaders([parseSecret(a), parseSecret(b)], "msg_x", Math.floor(Date.now() / 1000), body);
    expect(headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    expect(headers["webhook-signature"]).toMatch(/^v1,\S+ v1,\S+$/);
    expect(() => new Webhook(a).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(b).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow();
  });

  it("fails verification when the body changes", () => {
    const s = newSecret();
    const headers = webhookHeaders([parseSecret(s)], "msg_x", Math.floor(Date.now() / 1000), '{"a":1}');
    expect(() => new Webhook(s).verify('{"a":2}', headers)).toThrow();
  });

  it("matches the spec's example vector", () => {
    // From the Standard Webhooks spec / reference libraries.
    const key = parseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    const sig = signatureHeader([key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    expect(sig).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("refuses malformed secrets", () => {
    expect(() => parseSecret("abc")).toThrow(/whsec_/);
    expect(() => parseSecret("whsec_!!!")).toThrow(/base64/);
    expect(() => parseSecret(`whsec_${randomBytes(8).toString("base64")}`)).toThrow(/bytes/);
  });
});
