import { createHash } from "node:crypto";
import { posix } from "node:path";
import { z } from "zod";

/** sha256 of bytes as lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const relativePath = z
  .string()
  .min(1)
  .max(512)
  .refine((p) => !p.startsWith("/") && posix.normalize(p) === p && !p.split("/").includes(".."), "must be a normalized relative path");

/** A version's `registry.json`: every file it consists of, with size and sha256. */
export const registryIndexSchema = z.object({
  format: z.literal("rebeca.registry/v1"),
  version: z.string(),
  publishedAt: z.string(),
  /** Where it came from (a directory, a derived version's parent), for people reading it. */
  source: z.string(),
  files: z.array(z.object({ path: relativePath, bytes: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })).min(1),
});
export type RegistryIndex = z.infer<typeof registryIndexSchema>;

/** A version that must not be served: its index or a file is missing, malformed or does not match. */
export class RegistryIntegrityError extends Error {
  constructor(
    readonly version: string,
    readonly reason: string,
  ) {
    super(`model version ${version} refused: ${reason}`);
    this.name = "RegistryIntegrityError";
  }
}

/** Parses index bytes for `version`, refusing a malformed one or one that names another version. */
export function parseRegistryIndex(version: string, bytes: Uint8Array): RegistryIndex {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new RegistryIntegrityError(version, "registry.json is not JSON");
  }
  const parsed = registryIndexSchema.safeParse(json);
  if (!parsed.success)
    throw new RegistryIntegrityError(version, `registry.json is malformed: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  if (parsed.data.version !== version) throw new RegistryIntegrityError(version, `registry.json names version "${parsed.data.version}"`);
  return parsed.data;
}

/** Checks one downloaded file against its index entry. */
export function checkFile(version: string, entry: RegistryIndex["files"][number], bytes: Uint8Array): void {
  if (bytes.byteLength !== entry.bytes) throw new RegistryIntegrityError(version, `${entry.path} is ${bytes.byteLength} bytes, the index says ${entry.bytes}`);
  const got = sha256Hex(bytes);
  if (got !== entry.sha256) throw new RegistryIntegrityError(version, `${entry.path} has sha256 ${got}, the index says ${entry.sha256}`);
}
