import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { DeadLetter } from "./dead-letters.js";
import type { DeliveryAttempt } from "./deliveries.js";
import { createDeliveryProcessor, RetryLaterError } from "./delivery.js";
import { DEFAULT_RETRY_POLICY } from "./schedule.js";
import type { SendResponse } from "./sender.js";
import { BlockedAddressError } from "@rebeca/platform";

const task = { tenant: "t", messageId: "msg_t_1-0", url: "https://h.example/x", eventId: "1-0", body: "{}" };

function harness(reply: () => Promise<SendResponse>, opts: { disabled?: boolean; keys?: Buffer[] } = {}) {
  const attempts: DeliveryAttempt[] = [];
  const letters: DeadLetter[] = [];
  const disabled: string[] = [];
  let sends = 0;
  const p = createDeliveryProcessor({
    sender: { send: () => (sends++, reply()), close: () => undefined },
    secrets: () => ("keys" in opts ? opts.keys : [randomBytes(32)]),
    endpoints: {
      get: async () => ({ disabled: !!opts.disabled, reason: "HTTP 410" }),
      disable: async (_t, url) => void disabled.push(url),
      enable: async () => undefined,
    },
    deadLetters: {
      add: async (l) => void letters.push(l),
      list: async () => ({ total: 0, items: [] }),
      get: async () => null,
      remove: async () => undefined,
      removeIfUnchanged: async () => true,
      count: async () => 0,
    },
    recordAttempt: async (_id, a) => void attempts.push(a),
    retry: { ...DEFAULT_RETRY_POLICY, jitter: 0 },
    now: () => Date.parse("2025-01-01T00:00:00Z"),
  });
  return { p, attempts, letters, disabled, sends: () => sends };
}

describe("delivery processor", () => {
  it("plans the scheduled retry on 500 and records the next attempt time", async () => {
    const h = harness(async () => ({ status: 500, headers: {} }));
    const err = await h.p.deliver(task, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryLaterError);
    expect((err as RetryLaterError).delayMs).toBe(5000);
    expect(h.attempts[0]).toMatchObject({ status: 500, outcome: "retry", nextAttemptTime: "2025-01-01T00:00:05.000Z" });
  });

  it("honours Retry-After on 503 only when larger", async () => {
    const h = harness(async () => ({ status: 503, headers: { "retry-after": "120" } }));
    expect(((await h.p.deliver(task, 1).catch((e: unknown) => e)) as RetryLaterError).delayMs).toBe(120_000);
    expect(((await h.p.deliver(task, 2).catch((e: unknown) => e)) as RetryLaterError).delayMs).toBe(300_000);
  });

  it("ignores Retry-After on other statuses", async () => {
    const h = harness(async () => ({ status: 500, headers: { "retry-after": "120" } }));
    expect(((await h.p.deliver(task, 1).catch((e: unknown) => e)) as RetryLaterError).delayMs).toBe(5000);
  });

  it("dead-letters after the last attempt", async () => {
    const h = harness(async () => ({ status: 302, headers: {} }));
    expect(await h.p.deliver(task, 10)).toBe("exhausted");
    expect(h.letters[0]).toMatchObject({ reason: "exhausted", attempts: 10, task });
  });

  it("disables the endpoint on 410", async () => {
    const h = harness(async () => ({ status: 410, headers: {} }));
    expect(await h.p.deliver(task, 1)).toBe("gone");
    expect(h.disabled).toEqual([task.url]);
    expect(h.letters[0]!.reason).toBe("gone");
  });

  it("does not send to a disabled endpoint or without a secret", async () => {
    const d = harness(async () => ({ status: 200, headers: {} }), { disabled: true });
    expect(await d.p.deliver(task, 1)).toBe("endpoint_disabled");
    const s = harness(async () => ({ status: 200, headers: {} }), { keys: undefined });
    expect(await s.p.deliver(task, 1)).toBe("no_signing_secret");
    expect(d.sends() + s.sends()).toBe(0);
  });

  it("never retries a blocked address", async () => {
    const h = harness(async () => {
      throw new BlockedAddressError("h.example resolves to loopback address 127.0.0.1");
    });
    expect(await h.p.deliver(task, 1)).toBe("blocked_address");
    expect(h.letters[0]!.reason).toBe("blocked_address");
  });

  it("retries transport errors", async () => {
    const h = harness(async () => {
      throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    });
    await expect(h.p.deliver(task, 3)).rejects.toBeInstanceOf(RetryLaterError);
    expect(h.attempts[0]!.error).toMatch(/ECONNREFUSED/);
  });
});
