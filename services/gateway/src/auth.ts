import { createHash, timingSafeEqual } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { RpcError } from "./errors.js";

/** One API key as configured: only its sha256 is stored. */
export interface ApiKeyEntry {
  tenant: string;
  /** Hex sha256 of the key. */
  sha256: string;
}

export const hashApiKey = (key: string): string => createHash("sha256").update(key, "utf8").digest("hex");

const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Resolves `authorization: Bearer <key>` to a tenant. Keys are compared by their sha256 in
 * constant time over every entry, so timing reveals neither which key nor how much matched.
 */
export function createAuthenticator(entries: ApiKeyEntry[]) {
  for (const e of entries) {
    if (!TENANT.test(e.tenant)) throw new Error(`api keys: tenant "${e.tenant}" must match ${TENANT}`);
    if (!/^[0-9a-f]{64}$/.test(e.sha256)) throw new Error(`api keys: tenant "${e.tenant}" has a sha256 that is not 64 hex characters`);
  }
  const table = entries.map((e) => ({ tenant: e.tenant, digest: Buffer.from(e.sha256, "hex") }));
  return function authenticate(metadata: Metadata): string {
    const header = metadata.get("authorization")[0];
    const match = typeof header === "string" ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new RpcError(status.UNAUTHENTICATED, "missing credentials: send 'authorization: Bearer <api key>'");
    const digest = createHash("sha256").update(match[1]!, "utf8").digest();
    let tenant: string | null = null;
    for (const entry of table) {
      if (timingSafeEqual(entry.digest, digest)) tenant = entry.tenant;
    }
    if (!tenant) throw new RpcError(status.UNAUTHENTICATED, "invalid api key");
    return tenant;
  };
}
