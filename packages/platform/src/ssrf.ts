/**
 * SSRF guard for callback URLs. Self-contained on purpose (only `node:` imports) so that it can move
 * to a shared package and the gateway can call {@link checkCallbackUrl} at submission time.
 *
 * The URL check at submission is advisory: DNS can change between submission and delivery
 * (rebinding), so the delivery side re-checks the addresses a host resolves to and connects to the
 * checked address through {@link createGuardedLookup}.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { isIP } from "node:net";

/** Why an address is not a public unicast one, or `public`. */
export type AddressClass = "public" | "loopback" | "private" | "link-local" | "cgnat" | "unspecified" | "multicast" | "metadata" | "reserved";

interface Range {
  bytes: Uint8Array;
  prefix: number;
  cls: AddressClass;
}

/** 16 bytes of an IP address; IPv4 is returned IPv4-mapped (::ffff:a.b.c.d). Null when not an IP. */
export function ipToBytes(ip: string): Uint8Array | null {
  const addr = stripZone(unbracket(ip));
  const kind = isIP(addr);
  if (kind === 4) {
    const out = new Uint8Array(16);
    out[10] = 0xff;
    out[11] = 0xff;
    addr.split(".").forEach((p, i) => (out[12 + i] = Number(p)));
    return out;
  }
  if (kind !== 6) return null;
  let text = addr.toLowerCase();
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  const maybeV4 = text.slice(lastColon + 1);
  if (maybeV4.includes(".")) {
    maybeV4.split(".").forEach((p) => tail.push(Number(p)));
    text = text.slice(0, lastColon + 1) + "0:0";
  }
  const [head, rest] = text.includes("::") ? text.split("::") : [text, undefined];
  const headGroups = head ? head.split(":") : [];
  const restGroups = rest ? rest.split(":") : [];
  const fill = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(fill).fill("0"), ...restGroups];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function stripZone(ip: string): string {
  const i = ip.indexOf("%");
  return i < 0 ? ip : ip.slice(0, i);
}

function inRange(bytes: Uint8Array, range: { bytes: Uint8Array; prefix: number }): boolean {
  const full = range.prefix >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== range.bytes[i]) return false;
  const bits = range.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((bytes[full]! ^ range.bytes[full]!) & mask) === 0;
}

/** Parses `a.b.c.d/n`, `x::/n` or a bare address (a /32 or /128). IPv4 CIDRs are stored mapped. */
export function parseCidr(text: string): { bytes: Uint8Array; prefix: number } | null {
  const [addr, len] = text.split("/");
  if (!addr) return null;
  const bytes = ipToBytes(addr);
  if (!bytes) return null;
  const v4 = isIP(unbracket(addr)) === 4;
  const max = v4 ? 32 : 128;
  const n = len === undefined ? max : Number(len);
  if (!Number.isInteger(n) || n < 0 || n > max || (len !== undefined && !/^\d+$/.test(len))) return null;
  return { bytes, prefix: v4 ? n + 96 : n };
}

const range = (cidr: string, cls: AddressClass): Range => ({ ...parseCidr(cidr)!, cls });

// Order matters: the first match wins, so the metadata /32s come before the ranges holding them.
const V4_RANGES: Range[] = [
  range("169.254.169.254/32", "metadata"),
  range("0.0.0.0/8", "unspecified"),
  range("10.0.0.0/8", "private"),
  range("100.64.0.0/10", "cgnat"),
  range("127.0.0.0/8", "loopback"),
  range("169.254.0.0/16", "link-local"),
  range("172.16.0.0/12", "private"),
  range("192.0.0.0/24", "reserved"),
  range("192.0.2.0/24", "reserved"),
  range("192.168.0.0/16", "private"),
  range("198.18.0.0/15", "reserved"),
  range("198.51.100.0/24", "reserved"),
  range("203.0.113.0/24", "reserved"),
  range("224.0.0.0/4", "multicast"),
  range("240.0.0.0/4", "reserved"),
];

const V6_RANGES: Range[] = [
  range("fd00:ec2::254/128", "metadata"),
  range("::/128", "unspecified"),
  range("::1/128", "loopback"),
  range("100::/64", "reserved"),
  range("2001:db8::/32", "reserved"),
  range("fc00::/7", "private"),
  range("fe80::/10", "link-local"),
  range("fec0::/10", "private"),
  range("ff00::/8", "multicast"),
];

const MAPPED = parseCidr("::ffff:0:0/96")!;
/** Prefixes whose low 32 bits embed an IPv4 address that a gateway would connect to. */
const EMBEDDING_V4 = [parseCidr("::/96")!, parseCidr("64:ff9b::/96")!, parseCidr("64:ff9b:1::/48")!];
const SIX_TO_FOUR = parseCidr("2002::/16")!;

function classifyV4(b4: Uint8Array): AddressClass {
  const mapped = new Uint8Array(16);
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  mapped.set(b4, 12);
  if (b4.every((x) => x === 255)) return "reserved";
  return V4_RANGES.find((r) => inRange(mapped, r))?.cls ?? "public";
}

/**
 * Classifies an IP address. IPv4-mapped (`::ffff:127.0.0.1`), IPv4-compatible, NAT64 and 6to4
 * addresses are judged by the IPv4 address they carry. Throws on a string that is not an IP.
 */
export function classifyAddress(ip: string): AddressClass {
  const bytes = ipToBytes(ip);
  if (!bytes) throw new TypeError(`not an IP address: ${ip}`);
  if (inRange(bytes, MAPPED)) return classifyV4(bytes.subarray(12));
  const v6 = V6_RANGES.find((r) => inRange(bytes, r));
  if (v6) return v6.cls;
  if (EMBEDDING_V4.some((r) => inRange(bytes, r))) return classifyV4(bytes.subarray(12));
  if (inRange(bytes, SIX_TO_FOUR)) return classifyV4(bytes.subarray(2, 6));
  return "public";
}

/** Hosts and CIDRs exempt from the guard (e.g. `127.0.0.1,localhost` in tests). */
export interface AllowList {
  hosts: ReadonlySet<string>;
  cidrs: ReadonlyArray<{ bytes: Uint8Array; prefix: number }>;
}

/** Builds an allowlist from entries such as `localhost`, `127.0.0.1`, `10.0.0.0/8`, `::1`. */
export function parseAllowList(entries: readonly string[]): AllowList {
  const hosts = new Set<string>();
  const cidrs: { bytes: Uint8Array; prefix: number }[] = [];
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    const cidr = parseCidr(entry);
    if (cidr) cidrs.push(cidr);
    else hosts.add(normalizeHost(entry));
  }
  return { hosts, cidrs };
}

function normalizeHost(host: string): string {
  return unbracket(host.toLowerCase()).replace(/\.$/, "");
}

/** True when `ip` falls in an allowlisted CIDR. */
export function addressAllowed(ip: string, allow: AllowList): boolean {
  const bytes = ipToBytes(ip);
  return !!bytes && allow.cidrs.some((c) => inRange(bytes, c));
}

/** Refusal codes of {@link checkCallbackUrl}. */
export type CallbackUrlProblem = "invalid_url" | "scheme" | "blocked_address" | "unresolvable";

export type CallbackUrlCheck = { ok: true; url: URL; addresses: string[] } | { ok: false; problem: CallbackUrlProblem; reason: string };

/** Addresses of a host name (all families). */
export type Resolve = (host: string) => Promise<string[]>;

/** Resolves with the system resolver, as `http.request` would. */
export const systemResolve: Resolve = (host) =>
  new Promise((resolve, reject) => dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs.map((a) => a.address)))));

/**
 * Checks resolved addresses of `host`: every one must be public, unless the host itself or the
 * address's CIDR is allowlisted. Any blocked address refuses the host (no partial use).
 * @returns the first refusal reason, or null when allowed.
 */
export function checkAddresses(host: string, addresses: readonly string[], allow: AllowList): string | null {
  if (allow.hosts.has(normalizeHost(host))) return null;
  if (addresses.length === 0) return `${host} has no addresses`;
  for (const a of addresses) {
    if (addressAllowed(a, allow)) continue;
    const cls = classifyAddress(a);
    if (cls !== "public") return `${host} resolves to ${cls} address ${a}`;
  }
  return null;
}

/**
 * The syntactic part of the check: parses the URL, requires http or https, and checks an IP-literal
 * host (WHATWG URL parsing already turns `2130706433`, `0x7f.1` and `0177.0.0.1` into `127.0.0.1`).
 * @returns the URL and, for a literal host, its address; or a refusal.
 */
export function checkCallbackUrlSyntax(
  url: string,
  allow: AllowList,
): { ok: true; url: URL; literal: string | null } | { ok: false; problem: CallbackUrlProblem; reason: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, problem: "invalid_url", reason: "not an absolute URL" };
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return { ok: false, problem: "scheme", reason: `scheme ${parsed.protocol.replace(":", "")} is not http or https` };
  }
  const host = unbracket(parsed.hostname);
  if (!host) return { ok: false, problem: "invalid_url", reason: "no host" };
  if (isIP(host) === 0) return { ok: true, url: parsed, literal: null };
  const reason = checkAddresses(host, [host], allow);
  return reason ? { ok: false, problem: "blocked_address", reason } : { ok: true, url: parsed, literal: host };
}

/**
 * Validates a callback URL: http/https only; the host (literal or every resolved address) must be
 * public unless allowlisted. Use at submission (the gateway) and again at delivery time.
 * @param options.allow allowlist from {@link parseAllowList}, or its entries. @default none
 * @param options.resolve DNS adapter. @default {@link systemResolve}
 */
export async function checkCallbackUrl(url: string, options: { allow?: AllowList | readonly string[]; resolve?: Resolve } = {}): Promise<CallbackUrlCheck> {
  const allow = toAllowList(options.allow);
  const syntax = checkCallbackUrlSyntax(url, allow);
  if (!syntax.ok) return syntax;
  if (syntax.literal) return { ok: true, url: syntax.url, addresses: [syntax.literal] };
  const host = syntax.url.hostname;
  let addresses: string[];
  try {
    addresses = await (options.resolve ?? systemResolve)(host);
  } catch (err) {
    return { ok: false, problem: "unresolvable", reason: `${host} does not resolve: ${(err as Error).message}` };
  }
  const reason = checkAddresses(host, addresses, allow);
  return reason ? { ok: false, problem: "blocked_address", reason } : { ok: true, url: syntax.url, addresses };
}

function toAllowList(allow: AllowList | readonly string[] | undefined): AllowList {
  if (!allow) return { hosts: new Set(), cidrs: [] };
  return "hosts" in allow ? allow : parseAllowList(allow as readonly string[]);
}

/** Raised (through `http.request`'s error event) when a resolved address is refused. */
export class BlockedAddressError extends Error {
  readonly code = "ERR_CALLBACK_ADDRESS_BLOCKED";
  constructor(reason: string) {
    super(reason);
    this.name = "BlockedAddressError";
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for `http.request` / `net.connect` that resolves, checks every address and hands the
 * checked addresses to the socket, so the address connected to is the one checked (no rebinding
 * window). Refusals surface as {@link BlockedAddressError} on the request.
 */
export function createGuardedLookup(
  allow: AllowList,
  base: (host: string, opts: LookupOptions & { all: true }, cb: (err: NodeJS.ErrnoException | null, addrs: LookupAddress[]) => void) => void = (h, o, cb) =>
    dnsLookup(h, o, cb),
) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    base(hostname, { ...options, all: true }, (err, addrs) => {
      if (err) return callback(err, []);
      const reason = checkAddresses(
        hostname,
        addrs.map((a) => a.address),
        allow,
      );
      if (reason) return callback(new BlockedAddressError(reason), []);
      if (options.all) return callback(null, addrs);
      const first = addrs[0]!;
      callback(null, first.address, first.family);
    });
  };
}
