import { describe, expect, it } from "vitest";
import { checkCallbackUrl, checkCallbackUrlSyntax, classifyAddress, createGuardedLookup, parseAllowList } from "./ssrf.js";

describe("classifyAddress", () => {
  it.each([
    ["8.8.8.8", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "metadata"],
    ["169.254.1.1", "link-local"],
    ["100.64.0.1", "cgnat"],
    ["100.127.255.255", "cgnat"],
    ["100.128.0.1", "public"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["fd00:ec2::254", "metadata"],
    ["fd12:3456::1", "private"],
    ["fc00::1", "private"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["ff02::1", "multicast"],
    ["2606:4700::1111", "public"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:169.254.169.254", "metadata"],
    ["::ffff:8.8.8.8", "public"],
    ["::127.0.0.1", "loopback"],
    ["64:ff9b::10.0.0.1", "private"],
    ["2002:7f00:1::", "loopback"],
    ["[::1]", "loopback"],
  ])("%s is %s", (ip, cls) => {
    expect(classifyAddress(ip)).toBe(cls);
  });

  it("throws on a non-address", () => {
    expect(() => classifyAddress("example.com")).toThrow();
  });
});

describe("checkCallbackUrlSyntax", () => {
  const none = parseAllowList([]);
  it.each([
    "http://2130706433/", // decimal
    "http://0x7f.1/", // hex
    "http://0177.0.0.1/", // octal
    "http://127.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::1]:8080/x",
    "http://169.254.169.254/latest/meta-data",
    "http://[fd00:ec2::254]/",
  ])("refuses %s", (url) => {
    const r = checkCallbackUrlSyntax(url, none);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toBe("blocked_address");
  });

  it.each(["ftp://example.com/", "file:///etc/passwd", "gopher://x/"])("refuses scheme of %s", (url) => {
    const r = checkCallbackUrlSyntax(url, none);
    expect(r.ok ? null : r.problem).toBe("scheme");
  });

  it("refuses garbage", () => {
    expect(checkCallbackUrlSyntax("not a url", none).ok).toBe(false);
  });

  it("allows an allowlisted address or CIDR", () => {
    expect(checkCallbackUrlSyntax("http://127.0.0.1:9/", parseAllowList(["127.0.0.1"])).ok).toBe(true);
    expect(checkCallbackUrlSyntax("http://10.2.3.4/", parseAllowList(["10.0.0.0/8"])).ok).toBe(true);
    expect(checkCallbackUrlSyntax("http://10.2.3.4/", parseAllowList(["10.0.0.0/16"])).ok).toBe(false);
    expect(checkCallbackUrlSyntax("http://[::1]/", parseAllowList(["::1"])).ok).toBe(true);
  });
});

describe("checkCallbackUrl", () => {
  const resolveTo = (addrs: string[]) => async () => addrs;
  it("refuses a name resolving to a private address", async () => {
    const r = await checkCallbackUrl("https://hooks.example.com/x", { resolve: resolveTo(["10.0.0.5"]) });
    expect(r).toMatchObject({ ok: false, problem: "blocked_address" });
  });
  it("refuses when any resolved address is blocked", async () => {
    const r = await checkCallbackUrl("https://hooks.example.com/x", { resolve: resolveTo(["93.184.216.34", "::1"]) });
    expect(r.ok).toBe(false);
  });
  it("accepts public addresses", async () => {
    const r = await checkCallbackUrl("https://hooks.example.com/x", { resolve: resolveTo(["93.184.216.34"]) });
    expect(r).toMatchObject({ ok: true, addresses: ["93.184.216.34"] });
  });
  it("accepts an allowlisted host name whatever it resolves to", async () => {
    const r = await checkCallbackUrl("http://localhost:8080/", { allow: ["localhost"], resolve: resolveTo(["127.0.0.1"]) });
    expect(r.ok).toBe(true);
  });
  it("reports unresolvable hosts", async () => {
    const r = await checkCallbackUrl("https://nx.invalid/", {
      resolve: async () => {
        throw new Error("ENOTFOUND");
      },
    });
    expect(r).toMatchObject({ ok: false, problem: "unresolvable" });
  });
});

describe("createGuardedLookup", () => {
  const fakeDns =
    (addrs: { address: string; family: number }[]) =>
    (_h: string, _o: unknown, cb: (err: NodeJS.ErrnoException | null, a: { address: string; family: number }[]) => void) =>
      cb(null, addrs);
  it("fails the connection for a rebinding answer", async () => {
    const lookup = createGuardedLookup(parseAllowList([]), fakeDns([{ address: "127.0.0.1", family: 4 }]));
    const err = await new Promise<Error | null>((resolve) => lookup("evil.example", {}, (e) => resolve(e)));
    expect(err).toMatchObject({ code: "ERR_CALLBACK_ADDRESS_BLOCKED" });
  });
  it("hands over the checked address (single and all forms)", async () => {
    const lookup = createGuardedLookup(parseAllowList([]), fakeDns([{ address: "93.184.216.34", family: 4 }]));
    const single = await new Promise<unknown[]>((resolve) => lookup("ok.example", {}, (...a) => resolve(a)));
    expect(single).toEqual([null, "93.184.216.34", 4]);
    const all = await new Promise<unknown[]>((resolve) => lookup("ok.example", { all: true }, (...a) => resolve(a)));
    expect(all).toEqual([null, [{ address: "93.184.216.34", family: 4 }]]);
  });
});
