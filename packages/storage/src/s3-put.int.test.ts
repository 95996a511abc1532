import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createS3Put } from "./s3-put.js";

const creds = async () => ({ accessKeyId: "any", secretAccessKey: "any" });

describe("lean S3 PUT against a misbehaving store", () => {
  let server: Server;
  let endpoint: string;
  /** What the store does with each request, in turn; then 200. */
  let script: ("503" | "drop" | "hang")[] = [];
  let seen: { path: string; auth: string; body: number }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ path: req.url!, auth: req.headers.authorization ?? "", body: Buffer.concat(chunks).byteLength });
        const step = script.shift();
        if (step === "hang") return;
        if (step === "drop") return req.socket.destroy();
        if (step === "503") return void res.writeHead(503).end("<Error><Code>SlowDown</Code></Error>");
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });
  const leanPut = (o: { attempts?: number; requestTimeoutMs?: number } = {}) =>
    createS3Put({ bucket: "b", endpoint, region: "us-east-1", credentials: creds, ...o });

  it("retries throttling and dropped connections, then succeeds; each try is signed", async () => {
    script = ["503", "drop"];
    seen = [];
    const lean = leanPut();
    await expect(lean.put("k/0.png", new Uint8Array(5), "image/png")).resolves.toBe("s3://b/k/0.png");
    expect(seen.map((s) => s.path)).toEqual(["/b/k/0.png", "/b/k/0.png", "/b/k/0.png"]);
    expect(seen.every((s) => s.auth.startsWith("AWS4-HMAC-SHA256 Credential=any/") && s.body === 5)).toBe(true);
    lean.close();
  });

  it("gives up after its tries with the last error", async () => {
    script = ["503", "503", "503"];
    const lean = leanPut();
    await expect(lean.put("k/1.png", new Uint8Array(5), "image/png")).rejects.toMatchObject({ status: 503, code: "SlowDown" });
    lean.close();
  });

  it("abandons a request the store never answers", async () => {
    script = ["hang"];
    const lean = leanPut({ attempts: 1, requestTimeoutMs: 300 });
    await expect(lean.put("k/2.png", new Uint8Array(5), "image/png")).rejects.toThrow(/no reply in 300 ms/);
    lean.close();
  });
});
