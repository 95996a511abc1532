import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { LookupAddress } from "node:dns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkCallbackUrl, createGuardedLookup, parseAllowList } from "@rebeca/platform";
import { createHttpSender } from "./sender.js";

/**
 * DNS rebinding against the real HTTP sender: a resolver we control answers a public address when
 * the gateway checks the URL and loopback when the notifier connects. The loopback server counts
 * connections, so "refused" means no TCP connection was ever made, not just no request.
 */
describe("HTTP sender: the address connected to is the address checked", () => {
  let server: Server;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    server = createServer((_req, res) => res.writeHead(204).end());
    server.on("connection", () => connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  /** First answer public, every later one loopback: what a rebinding DNS server does. */
  function rebindingDns() {
    let calls = 0;
    const answer = () => (calls++ === 0 ? "93.184.216.34" : "127.0.0.1");
    return {
      resolve: async () => [answer()],
      base: (_host: string, _opts: unknown, cb: (err: NodeJS.ErrnoException | null, addrs: LookupAddress[]) => void) =>
        cb(null, [{ address: answer(), family: 4 }]),
      calls: () => calls,
    };
  }

  it("refuses a host that passed the submission check but resolves to loopback at delivery", async () => {
    const dns = rebindingDns();
    const url = `http://hooks.rebind.test:${port}/cb`;
    const allow = parseAllowList([]);
    expect(await checkCallbackUrl(url, { allow, resolve: dns.resolve })).toMatchObject({ ok: true, addresses: ["93.184.216.34"] });

    const sender = createHttpSender({ allow, lookup: createGuardedLookup(allow, dns.base), timeoutMs: 2000 });
    const before = connections;
    await expect(sender.send({ url, headers: {}, body: "{}" })).rejects.toMatchObject({
      code: "ERR_CALLBACK_ADDRESS_BLOCKED",
      message: expect.stringMatching(/loopback address 127\.0\.0\.1/),
    });
    sender.close();
    expect(dns.calls()).toBe(2);
    expect(connections).toBe(before);
  });

  it("refuses IP-literal spellings of loopback without any lookup or connection", async () => {
    const sender = createHttpSender({ allow: parseAllowList([]), timeoutMs: 2000 });
    const before = connections;
    for (const host of ["127.0.0.1", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "[::1]"]) {
      await expect(sender.send({ url: `http://${host}:${port}/cb`, headers: {}, body: "{}" })).rejects.toMatchObject({ code: "ERR_CALLBACK_ADDRESS_BLOCKED" });
    }
    sender.close();
    expect(connections).toBe(before);
  });

  it("delivers when the operator allowlists the loopback range (so the refusals above are the guard's doing)", async () => {
    const dns = rebindingDns();
    dns.base("x", {}, () => {}); // spend the public answer: the next one is loopback
    const allow = parseAllowList(["127.0.0.0/8"]);
    const sender = createHttpSender({ allow, lookup: createGuardedLookup(allow, dns.base), timeoutMs: 2000 });
    const res = await sender.send({ url: `http://hooks.rebind.test:${port}/cb`, headers: {}, body: "{}" });
    sender.close();
    expect(res.status).toBe(204);
  });
});
