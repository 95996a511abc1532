import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { assertSafeKey } from "./blob-store.js";
import { createSigV4Signer, encodeS3Path, sha256Hex, type SigningCredentials } from "./sigv4.js";

export interface S3PutOptions {
  bucket: string;
  /** S3-compatible endpoint (path-style addressing); absent: AWS S3 in `region` (virtual-hosted). */
  endpoint?: string;
  region: string;
  /** The SDK client's credential provider (env, profile, IRSA, instance role: cached and refreshed by the SDK). */
  credentials: () => Promise<SigningCredentials>;
  /** Milliseconds to wait for a connection. @default 3000 */
  connectionTimeoutMs?: number;
  /** Milliseconds before a request is abandoned. @default 30000 */
  requestTimeoutMs?: number;
  /** Tries per object (network errors, 5xx, throttling). @default 3, as the SDK */
  attempts?: number;
  /** Concurrent connections kept alive to the store. @default 32 */
  maxSockets?: number;
}

/** A refused PUT: the store's HTTP status and S3 error code. */
export class S3PutError extends Error {
  constructor(
    readonly key: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(`S3 PUT ${key} failed: HTTP ${status} ${code}`);
    this.name = "S3PutError";
  }
}

const retryable = (err: unknown) => !(err instanceof S3PutError) || err.status >= 500 || err.code === "SlowDown" || err.code === "RequestTimeout";

/**
 * A whole-object PUT over a kept-alive HTTP(S) connection, signed with SigV4: the same request the
 * SDK's PutObjectCommand sends for a small body, without its per-request middleware (endpoint
 * rules, retry strategy objects, user agent, XML parsing of the reply), which cost the decode
 * stage about as much CPU per image as the model. Retries network errors and 5xx with backoff.
 * Returns the same `put` as the BlobStore's.
 */
export function createS3Put(o: S3PutOptions): { put: (key: string, body: Uint8Array, contentType: string) => Promise<string>; close: () => void } {
  const sign = createSigV4Signer(o.region);
  const virtualHosted = !o.endpoint && /^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(o.bucket);
  const base = new URL(o.endpoint ?? (virtualHosted ? `https://${o.bucket}.s3.${o.region}.amazonaws.com` : `https://s3.${o.region}.amazonaws.com`));
  const https = base.protocol === "https:";
  const agent = new (https ? HttpsAgent : HttpAgent)({ keepAlive: true, maxSockets: o.maxSockets ?? 32 });
  const request = https ? httpsRequest : httpRequest;
  const prefix = base.pathname.replace(/\/$/, "") + (virtualHosted ? "" : `/${o.bucket}`);
  const attempts = o.attempts ?? 3;

  const once = async (key: string, body: Uint8Array, contentType: string, payloadHash: string): Promise<void> => {
    const path = encodeS3Path(`${prefix}/${key}`);
    const headers = sign({ method: "PUT", path, headers: { host: base.host, "content-type": contentType }, payloadHash }, await o.credentials());
    await new Promise<void>((resolve, reject) => {
      const req = request(
        {
          agent,
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port,
          method: "PUT",
          path,
          headers: { ...headers, "content-length": String(body.byteLength) },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            if (res.statusCode === 200) return resolve();
            const code = /<Code>([^<]*)<\/Code>/.exec(Buffer.concat(chunks).toString("utf8"))?.[1] ?? "UnknownError";
            reject(new S3PutError(key, res.statusCode ?? 0, code));
          });
        },
      );
      // A connection the store never accepts, or a reply that never comes, fails the try.
      const connect = setTimeout(
        () => req.destroy(new Error(`S3 PUT ${key}: no connection in ${o.connectionTimeoutMs ?? 3000} ms`)),
        o.connectionTimeoutMs ?? 3000,
      );
      req.on("socket", (socket) => {
        if (!socket.connecting) clearTimeout(connect);
        else socket.once("connect", () => clearTimeout(connect));
      });
      req.setTimeout(o.requestTimeoutMs ?? 30_000, () => req.destroy(new Error(`S3 PUT ${key}: no reply in ${o.requestTimeoutMs ?? 30_000} ms`)));
      req.on("error", reject);
      req.on("close", () => clearTimeout(connect));
      req.end(body);
    });
  };

  return {
    async put(key, body, contentType) {
      assertSafeKey(key);
      const payloadHash = sha256Hex(body);
      for (let attempt = 1; ; attempt++) {
        try {
          await once(key, body, contentType, payloadHash);
          return `s3://${o.bucket}/${key}`;
        } catch (err) {
          // A kept-alive connection the store closed fails at once; backoff as the SDK's (100 ms base, jittered).
          if (attempt >= attempts || !retryable(err)) throw err;
          await new Promise((r) => setTimeout(r, Math.random() * 100 * 2 ** (attempt - 1)));
        }
      }
    },
    close: () => agent.destroy(),
  };
}
