import { readFileSync } from "node:fs";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobClient, startStack, type Stack } from "@rebeca/devstack";
import { modelUserIds } from "../support/world.js";
import { generateCases, type FuzzCase } from "./generator.js";

/*
 * Malformed requests against a real gateway (Redis, s3rver, no workers): every one must get a clean
 * gRPC status, the process must stay up with bounded memory, and nothing may be written.
 * FUZZ_REQUESTS (default 10000) and FUZZ_SEED (default 20261125) pick the run.
 */
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const CONCURRENCY = 32;
const MAX_MESSAGE_BYTES = 256 * 1024;
/**
 * RSS the gateway may gain between the warm-up sample and the end: the heap settling under 32
 * concurrent streams (Node 24's V8 settles ~110 MB above the warm-up, Node 20's ~55 MB).
 */
const RSS_GROWTH_LIMIT_MB = 160;
/** RSS it may gain over the last 30 % of the requests: the heap has settled by then (measured), a leak keeps growing. */
const RSS_LATE_GROWTH_LIMIT_MB = 24;

const identity = (b: Uint8Array) => Buffer.from(b);

/** Resident set size of a live process, MB (NaN once it is gone: the checks below then fail). */
function rssMb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

describe("gRPC fuzzing: malformed requests get clean errors and leave nothing behind", () => {
  let stack: Stack;
  let redis: Redis;
  let raw: Client;

  beforeAll(async () => {
    stack = await startStack({
      services: ["gateway"],
      env: { gateway: { CALLBACK_ALLOW_HOSTS: "", MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES), SHARD_SIZE: "8" } },
    });
    redis = new Redis(stack.redis.url);
    raw = new Client(stack.grpcAddress, credentials.createInsecure(), { "grpc.max_receive_message_length": -1 });
  });
  afterAll(async () => {
    raw?.close();
    redis?.disconnect();
    await stack?.stop();
  });

  /** Every key in Redis and the length of every stream: what a request could have written. */
  async function footprint(): Promise<string[]> {
    const keys = (await redis.keys("*")).sort();
    const out: string[] = [];
    for (const k of keys) {
      const type = await redis.type(k);
      out.push(type === "stream" ? `${k} (${await redis.xlen(k)})` : type === "list" ? `${k} (${await redis.llen(k)})` : k);
    }
    return out;
  }

  function send(c: FuzzCase, keys: Record<string, string>): Promise<{ code: status; details: string }> {
    const md = new Metadata();
    if (c.authorization === undefined) md.set("authorization", `Bearer ${keys[c.tenant]}`);
    else if (c.authorization !== null) md.set("authorization", c.authorization);
    const done = (resolve: (v: { code: status; details: string }) => void) => (err: ServiceError | null) =>
      resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: "" });
    return new Promise((resolve) => {
      if (c.kind === "unary") {
        raw.makeUnaryRequest(c.path, identity, identity, c.messages[0]!, md, { deadline: Date.now() + 30_000 }, done(resolve));
      } else if (c.kind === "serverStream") {
        const call = raw.makeServerStreamRequest(c.path, identity, identity, c.messages[0]!, md, { deadline: Date.now() + 30_000 });
        // A refused watch ends with an error status; one that was accepted would stream (a bug).
        call.on("data", () => {});
        call.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details }));
        call.on("status", (s) => s.code === status.OK && resolve({ code: status.OK, details: "" }));
      } else if (!c.abort) {
        const call = raw.makeClientStreamRequest(c.path, identity, identity, md, { deadline: Date.now() + 30_000 }, done(resolve));
        for (const m of c.messages) call.write(m);
        call.end();
      } else {
        // A truncated stream comes from its own connection, as from a client that died. (Resetting
        // hundreds of streams per second on one shared connection trips Node's HTTP/2 rapid-reset
        // protection — a burst of 1000, then 33/s — which closes that connection on purpose.)
        const own = new Client(stack.grpcAddress, credentials.createInsecure());
        const call = own.makeClientStreamRequest(c.path, identity, identity, md, { deadline: Date.now() + 30_000 }, (err) => {
          own.close();
          done(resolve)(err);
        });
        for (const m of c.messages) call.write(m);
        setImmediate(() => call.cancel());
      }
    });
  }

  it(`answers ${REQUESTS} malformed requests (seed ${SEED}) with clean statuses, writes nothing, keeps memory bounded`, { timeout: 600_000 }, async () => {
    const users = modelUserIds();
    const bucket = stack.s3.bucket;
    const s3 = new S3Client({
      endpoint: stack.s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    const manifests: Record<string, string> = {
      "tenants/acme/fuzz/space.txt": `${users[0]}\nhas space\n`,
      "tenants/acme/fuzz/long.txt": `${"u".repeat(129)}\n`,
      "tenants/acme/fuzz/unicode.txt": `${users[1]}\n\u202eevil\n`,
      "tenants/globex/fuzz/ids.txt": `${users.slice(0, 4).join("\n")}\n`,
    };
    for (const [Key, Body] of Object.entries(manifests)) await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body }));
    s3.destroy();

    const cases = generateCases(REQUESTS, SEED, {
      bucket,
      user: users[0]!,
      badManifestKeys: Object.keys(manifests).filter((k) => k.startsWith("tenants/acme/")),
      otherTenantManifestKey: "tenants/globex/fuzz/ids.txt",
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
    const keys = { acme: stack.tenants.acme!.apiKey, globex: stack.tenants.globex!.apiKey };
    const gateway = stack.services.gateway!;
    const pid = gateway.process.child.pid!;
    let exited = false;
    void gateway.process.exited.then(() => (exited = true));

    const before = await footprint();
    const rssStart = rssMb(pid);
    let rssWarm = 0;
    let rssLate = NaN;
    let rssPeak = rssStart;
    const rssSeries: number[] = [];
    const histogram = new Map<string, number>();
    const byMethod = new Map<string, number>();
    const failures: string[] = [];
    let next = 0;
    const warmAt = Math.floor(REQUESTS / 5);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < cases.length) {
          const i = next++;
          const c = cases[i]!;
          const res = await send(c, keys);
          const name = status[res.code] ?? String(res.code);
          histogram.set(name, (histogram.get(name) ?? 0) + 1);
          const method = c.path.split("/").pop()!;
          byMethod.set(method, (byMethod.get(method) ?? 0) + 1);
          if (!c.allowed.includes(res.code) && failures.length < 30)
            failures.push(`#${i} ${c.label}: ${name} ${res.details.slice(0, 160)} (allowed ${c.allowed.map((s) => status[s]).join("/")})`);
          if (i === warmAt) rssWarm = rssMb(pid);
          if (i === Math.floor(REQUESTS * 0.7)) rssLate = rssMb(pid);
          if (i % 250 === 0) rssPeak = Math.max(rssPeak, rssMb(pid));
          if (i > 0 && i % Math.max(1000, Math.floor(REQUESTS / 10)) === 0) rssSeries.push(Math.round(rssMb(pid)));
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const rssEnd = rssMb(pid);
    rssPeak = Math.max(rssPeak, rssEnd);
    const after = await footprint();

    const hist = [...histogram.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    console.log(
      `fuzz: ${REQUESTS} requests (seed ${SEED}) in ${seconds.toFixed(1)} s = ${(REQUESTS / seconds).toFixed(0)} req/s; codes: ${hist}\n` +
        `fuzz: by method: ${[...byMethod.entries()].map(([k, v]) => `${k}=${v}`).join(" ")}\n` +
        `fuzz: gateway RSS start ${rssStart.toFixed(1)} MB, after warm-up ${rssWarm.toFixed(1)} MB, at 70 % ${rssLate.toFixed(1)} MB, end ${rssEnd.toFixed(1)} MB, peak ${rssPeak.toFixed(1)} MB; every ${Math.max(1000, Math.floor(REQUESTS / 10))} requests: ${rssSeries.join(" ")} MB`,
    );

    expect(exited, `gateway exited; last output:\n${gateway.process.lines.slice(-15).join("\n")}`).toBe(false);
    expect(failures).toEqual([]);
    expect(after).toEqual(before);
    expect(rssEnd - rssWarm).toBeLessThan(RSS_GROWTH_LIMIT_MB);
    expect(rssEnd - rssLate).toBeLessThan(RSS_LATE_GROWTH_LIMIT_MB);

    // The gateway counted no request as INTERNAL or UNKNOWN and logged no failed RPC.
    const metrics = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/metrics`)).text();
    const bad = metrics.split("\n").filter((l) => l.startsWith("rebeca_gateway_requests_total") && /code="(INTERNAL|UNKNOWN)"/.test(l));
    expect(bad).toEqual([]);
    expect(gateway.process.lines.filter((l) => l.includes('"rpc failed"'))).toEqual([]);

    // Still serving: a valid request is accepted afterwards.
    const client = createJobClient(stack.grpcAddress, keys.acme);
    const ok = await client.createJob({ requestId: "after-fuzz", userId: users[0]!, numImages: 1 });
    client.close();
    expect(ok.job?.jobId).toMatch(/^job_/);
  });
});
