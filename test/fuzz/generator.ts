/**
 * A deterministic generator of malformed gRPC requests for the gateway. Every case it makes is
 * invalid on purpose (each mutation alone guarantees a refusal), so any OK answer is a bug, and so
 * is any Redis key a case leaves behind.
 */
import { status } from "@grpc/grpc-js";
import { JobState, Sampler, TimestepSpacing } from "@rebeca/contracts/grpc";
import { seededRandom } from "@rebeca/eval";
import { concat, f32, int, len, mapEntry, tag, varint, type Bytes } from "./wire.js";

/** The first number an API enum does not define (enums grow as samplers and spacings are added). */
const firstUnknown = (e: object) => Math.max(...Object.values(e).filter((v): v is number => typeof v === "number")) + 1;
const FIRST_UNKNOWN_SAMPLER = firstUnknown(Sampler);
const FIRST_UNKNOWN_SPACING = firstUnknown(TimestepSpacing);
const FIRST_UNKNOWN_JOB_STATE = firstUnknown(JobState);

/** The project's seeded generator (mulberry32) with the draws the cases need. */
export function fuzzRandom(seed: number) {
  const next = seededRandom(seed);
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    chance: (p: number) => next() < p,
  };
}
export type Rng = ReturnType<typeof fuzzRandom>;

export type Kind = "unary" | "serverStream" | "clientStream";

export interface FuzzCase {
  /** `/rebeca.v1.JobService/CreateJob` … */
  path: string;
  kind: Kind;
  /** Serialized request messages (one for unary and server streams). */
  messages: Bytes[];
  /** Client streams: cancel after writing instead of half-closing (a truncated stream). */
  abort: boolean;
  /** The authorization header value; `undefined` sends the tenant's real key, null none. */
  authorization: string | null | undefined;
  tenant: "acme" | "globex";
  /** Codes this case may get; anything else fails the run. */
  allowed: status[];
  /** What was done to the request, for the failure message and the histogram. */
  label: string;
}

export interface GeneratorContext {
  bucket: string;
  /** A user id the model knows (for otherwise valid parts). */
  user: string;
  /** Manifests under tenants/acme/ that hold bad user ids. */
  badManifestKeys: string[];
  /** A manifest of valid ids under tenants/globex/ (acme must not read it). */
  otherTenantManifestKey: string;
  /** Largest request message the gateway accepts. */
  maxMessageBytes: number;
}

// ---------------------------------------------------------------- value pools

const ODD_UNICODE = ["\u202e", "\u0000", "\ud800", "🧨", "a\u200db", "ｆｕｌｌ", "e\u0301", "\ufeff", "\u0085", "\u2028", "𝕏".repeat(40), "\u00a0"];
/** Bytes that are not UTF-8 at all (decoders substitute U+FFFD). */
const INVALID_UTF8 = [Uint8Array.from([0xff, 0xfe]), Uint8Array.from([0xc0, 0x80]), Uint8Array.from([0xed, 0xa0, 0x80]), Uint8Array.from([0x80])];

function oddText(r: Rng): string | Bytes {
  if (r.chance(0.25)) return r.pick(INVALID_UTF8);
  const n = r.int(1, 3);
  let s = "";
  for (let i = 0; i < n; i++) s += r.pick(ODD_UNICODE) + (r.chance(0.5) ? "x" : "");
  return s;
}

/** A string that is never a valid id: odd unicode, whitespace, control characters. */
function badId(r: Rng, maxLen: number): string | Bytes {
  return r.pick<() => string | Bytes>([
    () => "",
    () => "x".repeat(maxLen + r.int(1, 64)),
    () => "has space",
    () => `tab\tid`,
    () => oddText(r),
    () => "x".repeat(r.int(1, 8)) + r.pick(ODD_UNICODE),
    () => "y".repeat(r.int(20_000, 120_000)),
  ])();
}

const SSRF_URLS = [
  "http://127.0.0.1/hook",
  "http://2130706433/hook",
  "http://0x7f.1/hook",
  "http://0177.0.0.1/hook",
  "http://127.1/hook",
  "http://[::1]/hook",
  "http://[::ffff:127.0.0.1]/hook",
  "http://[0:0:0:0:0:ffff:7f00:1]/",
  "http://0/",
  "http://0.0.0.0:8080/",
  "http://169.254.169.254/latest/meta-data/",
  "http://[fd00:ec2::254]/latest/",
  "http://10.0.0.1/",
  "http://172.16.5.4/",
  "http://192.168.1.1/",
  "http://100.64.0.1/",
  "http://[fe80::1]/",
  "http://[fc00::1]/",
  "http://[64:ff9b::7f00:1]/",
  "http://[2002:7f00:1::]/",
  "http://224.0.0.1/",
  "http://255.255.255.255/",
  "http://localhost:9/hook",
  "https://localhost./hook",
];
const BAD_URLS = [
  "ftp://example.com/hook",
  "javascript:alert(1)",
  "file:///etc/passwd",
  "gopher://127.0.0.1:6379/_FLUSHALL",
  "not a url",
  "http://",
  "http://user:pw@example.com/hook",
  "//example.com/hook",
  "http://nx.invalid/hook",
  "http://[::1/",
];

// ---------------------------------------------------------------- job parameters

/** Field numbers of the parameters shared by CreateJobRequest and BatchParameters. */
interface ParamFields {
  requestId: number;
  numImages: number;
  guidance: number;
  steps: number;
  sampler: number;
  spacing: number;
  modelVersion: number;
  priority: number;
  labels: number;
  callbackUrl: number;
  callbackEvents: number;
  unknownUser: number;
}
const JOB_FIELDS: ParamFields & { userId: number } = {
  requestId: 1,
  userId: 2,
  numImages: 3,
  guidance: 4,
  steps: 5,
  sampler: 6,
  modelVersion: 8,
  priority: 9,
  labels: 10,
  callbackUrl: 11,
  callbackEvents: 12,
  unknownUser: 13,
  spacing: 14,
};
const BATCH_FIELDS: ParamFields = {
  requestId: 1,
  numImages: 2,
  guidance: 3,
  steps: 4,
  sampler: 5,
  modelVersion: 7,
  priority: 8,
  labels: 9,
  callbackUrl: 10,
  callbackEvents: 11,
  unknownUser: 12,
  spacing: 13,
};

/** A message as field number → its encoded occurrence(s), written in field order. */
type Msg = Map<number, Bytes>;
const encode = (m: Msg): Bytes => concat(...[...m.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b));

/** Mutations that each make job or batch parameters invalid, whatever else the message holds. */
function paramMutations(f: ParamFields & { userId?: number }): [string, (m: Msg, r: Rng) => void][] {
  const list: [string, (m: Msg, r: Rng) => void][] = [
    ["request_id missing", (m) => m.delete(f.requestId)],
    ["request_id bad", (m, r) => m.set(f.requestId, len(f.requestId, badId(r, 36)))],
    ["request_id wrong type", (m, r) => m.set(f.requestId, int(f.requestId, r.int(0, 1e9)))],
    ["num_images out of range", (m, r) => m.set(f.numImages, int(f.numImages, r.pick([0, -1, -7, 17, 1000, 2 ** 31 - 1, -(2 ** 31)])))],
    ["num_images wrong type", (m, r) => m.set(f.numImages, r.chance(0.5) ? len(f.numImages, "4") : f32(f.numImages, Number.NaN))],
    ["guidance NaN/Inf/negative", (m, r) => m.set(f.guidance, f32(f.guidance, r.pick([Number.NaN, Infinity, -Infinity, -1, -1e-3, 51, 3.4e38, -3.4e38])))],
    ["steps out of range", (m, r) => m.set(f.steps, int(f.steps, r.pick([0, -1, -50, 1001, 2 ** 31 - 1, -(2 ** 31)])))],
    ["sampler unknown", (m, r) => m.set(f.sampler, int(f.sampler, r.pick([FIRST_UNKNOWN_SAMPLER, 99, -1, 2 ** 31 - 1])))],
    ["spacing unknown", (m, r) => m.set(f.spacing, int(f.spacing, r.pick([FIRST_UNKNOWN_SPACING, 99, -1])))],
    ["priority out of range", (m, r) => m.set(f.priority, int(f.priority, r.pick([-1, 1001, -(2 ** 31), 2 ** 31 - 1])))],
    ["unknown_user unknown", (m, r) => m.set(f.unknownUser, int(f.unknownUser, r.pick([3, 42, -9])))],
    [
      "labels bad",
      (m, r) => {
        const pick = r.int(0, 2);
        if (pick === 0)
          m.set(f.labels, mapEntry(f.labels, r.pick<string | Bytes>(["Bad Key", "", "-x", "x-", "../etc", "a".repeat(64), "é", oddText(r)]), "v"));
        else if (pick === 1) m.set(f.labels, mapEntry(f.labels, "k", "v".repeat(r.int(257, 5000))));
        else m.set(f.labels, concat(...Array.from({ length: r.int(17, 200) }, (_, i) => mapEntry(f.labels, `k${i}`, "v"))));
      },
    ],
    ["callback_url SSRF", (m, r) => m.set(f.callbackUrl, len(f.callbackUrl, r.pick(SSRF_URLS)))],
    ["callback_url bad", (m, r) => m.set(f.callbackUrl, len(f.callbackUrl, r.chance(0.2) ? `https://example.com/${"a".repeat(2100)}` : r.pick(BAD_URLS)))],
    [
      "callback_events bad",
      (m, r) =>
        m.set(
          f.callbackEvents,
          r.chance(0.5)
            ? len(f.callbackEvents, r.pick<string | Bytes>(["job.exploded", "", "JOB.QUEUED", "batch.*", oddText(r)]))
            : concat(...Array.from({ length: r.int(8, 40) }, () => len(f.callbackEvents, "job.queued"))),
        ),
    ],
    [
      "model_version unknown",
      (m, r) => m.set(f.modelVersion, len(f.modelVersion, r.pick<string | Bytes>(["v-missing", "../demo-v1", "demo-v1\u0000", "x".repeat(5000), oddText(r)]))),
    ],
  ];
  if (f.userId !== undefined) {
    const u = f.userId;
    list.push(
      ["user_id bad", (m, r) => m.set(u, len(u, badId(r, 128)))],
      ["user_id missing", (m) => m.delete(u)],
      ["user_id wrong type", (m) => m.set(u, f32(u, 1.5))],
    );
  }
  return list;
}
const JOB_MUTATIONS = paramMutations(JOB_FIELDS);
const BATCH_MUTATIONS = paramMutations(BATCH_FIELDS);

function validParams(f: ParamFields & { userId?: number }, r: Rng, user: string): Msg {
  const m: Msg = new Map();
  m.set(f.requestId, len(f.requestId, `fz-${r.int(0, 1e9).toString(36)}`));
  if (f.userId !== undefined) m.set(f.userId, len(f.userId, user));
  m.set(f.numImages, int(f.numImages, r.int(1, 4)));
  if (r.chance(0.3)) m.set(f.labels, mapEntry(f.labels, "team", "fuzz"));
  return m;
}

/** Valid parameters with 1–3 invalidating mutations. */
function invalidParams(f: ParamFields & { userId?: number }, mutations: typeof JOB_MUTATIONS, r: Rng, user: string): { msg: Msg; label: string } {
  const msg = validParams(f, r, user);
  const labels: string[] = [];
  const n = r.int(1, 3);
  for (let i = 0; i < n; i++) {
    const [label, apply] = r.pick(mutations);
    apply(msg, r);
    labels.push(label);
  }
  return { msg, label: labels.join(" + ") };
}

// ---------------------------------------------------------------- raw byte damage

/**
 * Damages an encoding whose first field is an invalid request id (so a prefix that still decodes
 * remains invalid): truncation, bad wire types, overlong varints, lengths past the end, groups.
 */
function damage(bytes: Bytes, r: Rng, protect = 0): { bytes: Bytes; label: string } {
  const which = r.int(0, 7);
  switch (which) {
    case 0:
      return { bytes: bytes.subarray(0, r.int(0, Math.max(0, bytes.length - 1))), label: "raw: truncated" };
    case 1:
      return { bytes: concat(bytes, tag(r.int(1, 15), r.pick([6, 7]))), label: "raw: invalid wire type" };
    case 2:
      return { bytes: concat(bytes, tag(3, 0), Uint8Array.from(Array(11).fill(0xff))), label: "raw: varint overflow" };
    case 3:
      return { bytes: concat(bytes, tag(2, 2), varint(r.int(10, 1e7)), Uint8Array.from([1, 2, 3])), label: "raw: length past end" };
    case 4:
      return { bytes: concat(bytes, tag(r.int(14, 40), 3), varint(r.int(0, 300))), label: "raw: unterminated group" };
    case 5: {
      const out = Uint8Array.from(bytes);
      // Flips spare the first `protect` bytes (the invalid field that keeps the request invalid).
      for (let i = 0; i < r.int(1, 6); i++) if (out.length > protect) out[r.int(protect, out.length - 1)] = r.int(0, 255);
      return { bytes: out, label: "raw: bytes flipped" };
    }
    case 6:
      return { bytes: Uint8Array.from({ length: r.int(0, 300) }, () => r.int(0, 255)), label: "raw: random bytes" };
    default:
      return { bytes: concat(bytes, tag(r.int(100, 5000), 2), varint(3), Uint8Array.from([0xff, 0xff, 0xff]), tag(0, 0)), label: "raw: field number 0" };
  }
}

// ---------------------------------------------------------------- cases per method

const JOB = "/rebeca.v1.JobService/";
const BATCH = "/rebeca.v1.BatchService/";
const ID_CHARS = "0123456789abcdefghjkmnpqrstvwxyz";
const randomId = (r: Rng, prefix: string) => prefix + Array.from({ length: 26 }, () => r.pick([...ID_CHARS])).join("");

function badResourceId(r: Rng, prefix: string): { value: string | Bytes; label: string } {
  return r.pick<() => { value: string | Bytes; label: string }>([
    () => ({ value: randomId(r, prefix), label: "unknown id" }),
    () => ({ value: randomId(r, prefix).toUpperCase(), label: "id wrong case" }),
    () => ({ value: "", label: "id empty" }),
    () => ({ value: `${prefix}${"0".repeat(r.int(0, 40))}`, label: "id wrong length" }),
    () => ({ value: `${prefix}../../${"a".repeat(20)}`, label: "id traversal" }),
    () => ({ value: oddText(r), label: "id odd unicode" }),
    () => ({ value: "*", label: "id wildcard" }),
    () => ({ value: "z".repeat(r.int(1000, 200_000)), label: "id huge" }),
  ])();
}

type Make = (
  r: Rng,
  ctx: GeneratorContext,
) => Omit<FuzzCase, "authorization" | "tenant" | "allowed" | "abort"> & { abort?: boolean; allowed?: status[]; tenant?: FuzzCase["tenant"] };

const REFUSED = [status.INVALID_ARGUMENT, status.FAILED_PRECONDITION, status.NOT_FOUND];

const makers: [weight: number, make: Make][] = [
  [
    30,
    (r, ctx) => {
      const { msg, label } = invalidParams(JOB_FIELDS, JOB_MUTATIONS, r, ctx.user);
      if (r.chance(0.15)) {
        const first = len(1, "bad id");
        msg.set(1, first);
        const d = damage(encode(msg), r, first.length);
        return { path: `${JOB}CreateJob`, kind: "unary", messages: [d.bytes], label: `CreateJob ${d.label}` };
      }
      return { path: `${JOB}CreateJob`, kind: "unary", messages: [encode(msg)], label: `CreateJob ${label}` };
    },
  ],
  [
    8,
    (r) => {
      const method = r.pick(["GetJob", "CancelJob"]);
      const id = badResourceId(r, "job_");
      if (r.chance(0.15)) return { path: `${JOB}${method}`, kind: "unary", messages: [damage(len(1, id.value), r).bytes], label: `${method} raw` };
      return { path: `${JOB}${method}`, kind: "unary", messages: [len(1, id.value)], label: `${method} ${id.label}` };
    },
  ],
  [
    8,
    (r) => {
      const parts: Bytes[] = [];
      const labels: string[] = [];
      const v = r.int(0, 3);
      if (v === 0) {
        parts.push(int(1, r.pick([-1, 101, 1000, -(2 ** 31), 2 ** 31 - 1])));
        labels.push("page_size");
      }
      if (v === 1) {
        parts.push(len(2, r.pick<string | Bytes>(["garbage", "job_", randomId(r, "batch_"), oddText(r), "9".repeat(50_000)])));
        labels.push("page_token");
      }
      if (v === 2) {
        parts.push(int(3, r.pick([FIRST_UNKNOWN_JOB_STATE, 99, -1])));
        labels.push("state");
      }
      if (v === 3) {
        parts.push(mapEntry(5, r.pick<string | Bytes>(["Bad Key", "", oddText(r)]), "v"));
        labels.push("labels");
      }
      if (r.chance(0.3)) parts.push(len(4, badId(r, 128)));
      return { path: `${JOB}ListJobs`, kind: "unary", messages: [concat(...parts)], label: `ListJobs ${labels.join("+")}` };
    },
  ],
  [
    8,
    (r) => {
      const parts: Bytes[] = [];
      const v = r.int(0, 2);
      if (v === 0) parts.push(len(1, r.pick<string | Bytes>(["abc", "1-2-3", "9".repeat(21), "-1", "1-", " 1", oddText(r), "0".repeat(30_000)])));
      if (v === 1) parts.push(mapEntry(4, r.pick<string | Bytes>(["UPPER", "", "a b", oddText(r)]), "v"));
      if (v === 2) parts.push(concat(...Array.from({ length: r.int(17, 60) }, (_, i) => mapEntry(4, `k${i}`, "v"))));
      if (r.chance(0.3)) parts.push(len(2, badId(r, 40)), len(5, oddText(r)));
      return {
        path: `${JOB}WatchEvents`,
        kind: "serverStream",
        messages: [concat(...parts)],
        label: `WatchEvents ${["after_event_id", "label key", "too many labels"][v]}`,
      };
    },
  ],
  [
    22,
    (r, ctx) => {
      const chunk = (offset: number | bigint, ids: (string | Bytes)[], last: boolean) =>
        len(2, concat(int(1, offset), ...ids.map((id) => len(2, id)), last ? int(3, 1) : new Uint8Array()));
      const goodParams = () => len(1, encode(validParams(BATCH_FIELDS, r, ctx.user)));
      const goodChunk = () => chunk(0, [ctx.user, ctx.user], true);
      const v = r.int(0, 8);
      switch (v) {
        case 0: {
          const { msg, label } = invalidParams(BATCH_FIELDS, BATCH_MUTATIONS, r, ctx.user);
          return {
            path: `${BATCH}CreateBatch`,
            kind: "clientStream",
            messages: [len(1, encode(msg)), ...(r.chance(0.7) ? [goodChunk()] : [])],
            label: `CreateBatch params ${label}`,
          };
        }
        case 1: {
          const { msg, label } = invalidParams(BATCH_FIELDS, BATCH_MUTATIONS, r, ctx.user);
          return {
            path: `${BATCH}CreateBatch`,
            kind: "clientStream",
            messages: [len(1, encode(msg)), goodChunk()],
            abort: true,
            allowed: [status.INVALID_ARGUMENT, status.FAILED_PRECONDITION, status.CANCELLED],
            label: `CreateBatch aborted, params ${label}`,
          };
        }
        case 2: {
          const ids = Array.from({ length: r.int(1, 30) }, () => ctx.user as string | Bytes);
          ids[r.int(0, ids.length - 1)] = badId(r, 128);
          return {
            path: `${BATCH}CreateBatch`,
            kind: "clientStream",
            messages: [goodParams(), chunk(0, ids, r.chance(0.5))],
            label: "CreateBatch bad user id",
          };
        }
        case 3:
          return {
            path: `${BATCH}CreateBatch`,
            kind: "clientStream",
            messages: [goodParams(), chunk(r.pick<number | bigint>([-1, -(2 ** 40), 2n ** 63n - 1n, 2 ** 60]), [ctx.user], true)],
            label: "CreateBatch offset negative or past 2^53",
          };
        case 4:
          return {
            path: `${BATCH}CreateBatch`,
            kind: "clientStream",
            messages: [r.chance(0.5) ? goodChunk() : new Uint8Array(), goodChunk()],
            label: "CreateBatch first message without parameters",
          };
        case 5:
          return {
            path: `${BATCH}CreateBatch`,
            kind: "clientStream",
            messages: [goodParams(), r.chance(0.5) ? goodParams() : damage(len(1, "bad id"), r).bytes],
            label: "CreateBatch second message not users",
          };
        case 6:
          return {
            path: `${BATCH}CreateBatch`,
            kind: "clientStream",
            messages: [goodParams()],
            abort: true,
            allowed: [status.CANCELLED],
            label: "CreateBatch truncated after parameters",
          };
        case 7:
          return {
            path: `${BATCH}CreateBatch`,
            kind: "clientStream",
            messages: [goodParams(), ...Array.from({ length: r.int(1, 3) }, () => chunk(0, [], false))],
            label: "CreateBatch ends after chunks without users or last",
          };
        default:
          return { path: `${BATCH}CreateBatch`, kind: "clientStream", messages: [], label: "CreateBatch empty stream" };
      }
    },
  ],
  [
    10,
    (r, ctx) => {
      const good = () => len(1, encode(validParams(BATCH_FIELDS, r, ctx.user)));
      const v = r.int(0, 2);
      if (v === 0) {
        const { msg, label } = invalidParams(BATCH_FIELDS, BATCH_MUTATIONS, r, ctx.user);
        return {
          path: `${BATCH}CreateBatchFromManifest`,
          kind: "unary",
          messages: [concat(len(1, encode(msg)), len(2, `s3://${ctx.bucket}/tenants/acme/in.txt`))],
          label: `Manifest params ${label}`,
        };
      }
      if (v === 1) {
        const uri = r.pick<string | Bytes>([
          `s3://${ctx.bucket}/tenants/acme/../globex/fuzz/ids.txt`,
          `s3://${ctx.bucket}/tenants/acme/./x.txt`,
          `s3://${ctx.bucket}/tenants/acme//x.txt`,
          `s3://${ctx.bucket}/${ctx.otherTenantManifestKey}`,
          `s3://other-bucket/tenants/acme/x.txt`,
          `s3://${ctx.bucket}/tenants/acme`,
          `https://${ctx.bucket}.s3.amazonaws.com/tenants/acme/x.txt`,
          `http://169.254.169.254/latest/meta-data/`,
          `file:///etc/passwd`,
          `s3://${ctx.bucket}/tenants/acme/x\u0000.txt`,
          `s3://${ctx.bucket}/tenants/acme/missing-${r.int(0, 1e6)}.txt`,
          "",
          oddText(r),
        ]);
        // As acme: the URIs name acme's prefix, globex's manifest and traversals out of acme's.
        return { path: `${BATCH}CreateBatchFromManifest`, kind: "unary", messages: [concat(good(), len(2, uri))], label: "Manifest bad uri", tenant: "acme" };
      }
      return {
        path: `${BATCH}CreateBatchFromManifest`,
        kind: "unary",
        messages: [concat(good(), len(2, `s3://${ctx.bucket}/${r.pick(ctx.badManifestKeys)}`))],
        label: "Manifest bad user ids",
        tenant: "acme",
      };
    },
  ],
  [
    8,
    (r) => {
      const method = r.pick(["GetBatch", "CancelBatch", "ListBatches"]);
      if (method === "ListBatches") {
        const body = r.chance(0.5) ? int(1, r.pick([-1, 101, -(2 ** 31)])) : len(2, r.pick<string | Bytes>(["garbage", randomId(r, "job_"), oddText(r)]));
        return { path: `${BATCH}ListBatches`, kind: "unary", messages: [body], label: "ListBatches bad page" };
      }
      const id = badResourceId(r, "batch_");
      return { path: `${BATCH}${method}`, kind: "unary", messages: [len(1, id.value)], label: `${method} ${id.label}` };
    },
  ],
];
const TOTAL_WEIGHT = makers.reduce((n, [w]) => n + w, 0);

/** Authorization values that must all be refused. */
function badAuthorization(r: Rng): { value: string | null; label: string } {
  return r.pick<() => { value: string | null; label: string }>([
    () => ({ value: null, label: "no key" }),
    () => ({ value: "Bearer rk_wrong", label: "wrong key" }),
    () => ({ value: `Bearer ${"k".repeat(r.int(1, 4000))}`, label: "wrong key, odd length" }),
    () => ({ value: `Basic ${Buffer.from("acme:x").toString("base64")}`, label: "basic auth" }),
    () => ({ value: "Bearer", label: "empty bearer" }),
    () => ({ value: `Bearer ${"a".repeat(64)}`, label: "a sha256-looking key" }),
  ])();
}

/**
 * `n` malformed requests from `seed`. ~10 % carry bad credentials (UNAUTHENTICATED must win over
 * every other problem); ~0.5 % exceed the gateway's message limit (RESOURCE_EXHAUSTED).
 */
export function generateCases(n: number, seed: number, ctx: GeneratorContext): FuzzCase[] {
  const r = fuzzRandom(seed);
  const out: FuzzCase[] = [];
  for (let i = 0; i < n; i++) {
    let pick = r.next() * TOTAL_WEIGHT;
    const make = makers.find(([w]) => (pick -= w) < 0)![1];
    const c = make(r, ctx);
    let allowed = c.allowed ?? REFUSED;
    let authorization: string | null | undefined = undefined;
    let label = c.label;
    if (r.chance(0.1)) {
      const bad = badAuthorization(r);
      authorization = bad.value;
      label = `${bad.label} / ${label}`;
      allowed = c.abort ? [status.UNAUTHENTICATED, status.CANCELLED] : [status.UNAUTHENTICATED];
    }
    let messages = c.messages;
    if (r.chance(0.005) && messages.length > 0) {
      // Past MAX_MESSAGE_BYTES: an unknown field of junk on the first message.
      const junk = new Uint8Array(ctx.maxMessageBytes + r.int(1, 4096)).fill(0x61);
      messages = [concat(messages[0]!, len(999, junk)), ...messages.slice(1)];
      allowed = [...allowed, status.RESOURCE_EXHAUSTED];
      label = `oversized / ${label}`;
    }
    out.push({
      path: c.path,
      kind: c.kind,
      messages,
      abort: c.abort ?? false,
      authorization,
      tenant: c.tenant ?? (r.chance(0.8) ? "acme" : "globex"),
      allowed,
      label,
    });
  }
  return out;
}
