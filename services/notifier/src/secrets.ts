/** Tenant webhook secrets: parsing is pure; reading the file is main's job. */
import { parseSecret } from "./signing.js";

/** Tenant → signing keys (the first is the newest; all sign during rotation). */
export type TenantSecrets = ReadonlyMap<string, readonly Buffer[]>;

/**
 * Parses `{"tenantA": ["whsec_new", "whsec_old"], "tenantB": "whsec_..."}`. The key `*` is the
 * fallback for tenants without their own entry. Every problem is reported at once.
 * @throws Error listing each bad tenant or secret.
 */
export function parseWebhookSecrets(json: string): TenantSecrets {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`webhook secrets are not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("webhook secrets must be a JSON object of tenant → secrets");
  const problems: string[] = [];
  const out = new Map<string, Buffer[]>();
  for (const [tenant, value] of Object.entries(raw)) {
    const list = typeof value === "string" ? [value] : value;
    if (!Array.isArray(list) || list.length === 0) {
      problems.push(`${tenant}: expected a secret or a non-empty list of secrets`);
      continue;
    }
    const keys: Buffer[] = [];
    list.forEach((s: unknown, i: number) => {
      try {
        if (typeof s !== "string") throw new Error("not a string");
        keys.push(parseSecret(s));
      } catch (err) {
        problems.push(`${tenant}[${i}]: ${(err as Error).message}`);
      }
    });
    out.set(tenant, keys);
  }
  if (problems.length) throw new Error(`invalid webhook secrets: ${problems.join("; ")}`);
  return out;
}

/** Lookup with the `*` fallback. */
export function secretLookup(secrets: TenantSecrets) {
  return (tenant: string): readonly Buffer[] | undefined => secrets.get(tenant) ?? secrets.get("*");
}
