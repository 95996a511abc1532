/** Standard Webhooks signing (https://www.standardwebhooks.com): pure, no I/O. */
import { createHmac } from "node:crypto";

const PREFIX = "whsec_";

/**
 * Decodes a `whsec_<base64>` secret into its key bytes. The spec's secrets carry 24–64 random bytes;
 * anything shorter is refused so that a typo cannot produce a weak key.
 */
export function parseSecret(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) throw new Error("webhook secret must start with whsec_");
  const b64 = secret.slice(PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error("webhook secret is not base64 after whsec_");
  const key = Buffer.from(b64, "base64");
  if (key.length < 24 || key.length > 64) throw new Error(`webhook secret has ${key.length} bytes; expected 24..64`);
  return key;
}

/** `v1,<base64 HMAC-SHA256(key, "${id}.${timestamp}.${body}")>` for one key. */
export function signV1(key: Buffer, id: string, timestamp: number, body: string): string {
  const mac = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/**
 * The `webhook-signature` header: one space-separated `v1,` signature per active key, so receivers
 * holding either the new or the old secret verify during rotation.
 */
export function signatureHeader(keys: readonly Buffer[], id: string, timestamp: number, body: string): string {
  if (keys.length === 0) throw new Error("no signing keys");
  return keys.map((k) => signV1(k, id, timestamp, body)).join(" ");
}

/**
 * Headers of one delivery attempt. `timestamp` (unix seconds) is the attempt's send time, so a
 * retry hours later still passes the receiver's timestamp-window check; `id` never changes.
 */
export function webhookHeaders(keys: readonly Buffer[], id: string, timestamp: number, body: string): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signatureHeader(keys, id, timestamp, body),
  };
}
