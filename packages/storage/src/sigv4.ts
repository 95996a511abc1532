import { createHash, createHmac } from "node:crypto";

/** Credentials as the AWS SDK's providers return them. */
export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** One request to sign: its method, path (already URI-encoded) and the headers to sign (lower-case names). */
export interface SignableRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Hex sha256 of the body, or `UNSIGNED-PAYLOAD`. */
  payloadHash: string;
}

/** `20130524T000000Z`: the ISO 8601 basic form SigV4 dates take. */
export function amzDate(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** Encodes one path for a canonical request: every byte but A–Z a–z 0–9 - _ . ~ and `/`, as S3 wants it. */
export function encodeS3Path(path: string): string {
  return encodeURIComponent(path)
    .replace(/%2F/g, "/")
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export const sha256Hex = (body: Uint8Array | string): string => createHash("sha256").update(body).digest("hex");

/**
 * Signs requests with AWS Signature Version 4 for one service and region (no query string: the
 * whole-object PUTs this is for have none). The day's signing key is derived once and reused.
 */
export function createSigV4Signer(region: string, service = "s3") {
  let cached: { day: string; secret: string; key: Buffer } | undefined;
  const signingKey = (day: string, secret: string): Buffer => {
    if (cached?.day !== day || cached.secret !== secret) {
      const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
      cached = { day, secret, key: hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), "aws4_request") };
    }
    return cached.key;
  };
  /**
   * The headers to send: the request's own plus `x-amz-date`, `x-amz-content-sha256`,
   * `x-amz-security-token` (temporary credentials) and `authorization`, all of them signed.
   */
  return function sign(req: SignableRequest, creds: SigningCredentials, at = new Date()): Record<string, string> {
    const date = amzDate(at);
    const day = date.slice(0, 8);
    const headers: Record<string, string> = {
      ...req.headers,
      "x-amz-date": date,
      "x-amz-content-sha256": req.payloadHash,
      ...(creds.sessionToken ? { "x-amz-security-token": creds.sessionToken } : {}),
    };
    const names = Object.keys(headers).sort();
    const canonicalHeaders = names.map((n) => `${n}:${headers[n]!.trim().replace(/\s+/g, " ")}\n`).join("");
    const signedHeaders = names.join(";");
    const canonicalRequest = [req.method, req.path, "", canonicalHeaders, signedHeaders, req.payloadHash].join("\n");
    const scope = `${day}/${region}/${service}/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", date, scope, sha256Hex(canonicalRequest)].join("\n");
    const signature = createHmac("sha256", signingKey(day, creds.secretAccessKey)).update(stringToSign).digest("hex");
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  };
}
