/**
 * User-data erasure in the registry: blanks erased users in every published version's user table,
 * so no stored model file still holds their row (DataService.DeleteUserData, docs/security.md).
 *
 * Design: a new revision of the same version (`reviseVersion`), not a derived version with the
 * traffic policy repointed. Queued jobs name their version; a derived version would leave the old
 * one's files (with the row) for them to load, or break them when removed. A revision keeps the
 * name, so queued jobs keep working, and leaves no file with the row in the registry.
 */
import { registryObjectKeys } from "./layout.js";
import type { RegistryDeps } from "./publish.js";
import { listPublished, readPublishedFiles, reviseVersion } from "./publish.js";

/** What blanking needs from a prior manifest (`manifest.json` of the version). */
interface UserTableManifest {
  user_dim: number;
  users: { rows: number; null_row: number };
  files: { user_table: { path: string }; user_ids: { path: string } };
}

/**
 * Pure: the user table and id list with the erased users' rows zeroed and their ids replaced by
 * `~erased-<row>` (kept unique and in place, so every other row keeps its line). Null when none of
 * `erased` is in the table.
 */
export function blankUsers(
  m: Pick<UserTableManifest, "user_dim" | "users">,
  ids: string,
  table: Uint8Array,
  erased: ReadonlySet<string>,
): { ids: string; table: Uint8Array; blanked: number } | null {
  const lines = ids.split("\n");
  const out = new Uint8Array(table);
  let blanked = 0;
  lines.forEach((raw, line) => {
    const id = raw.replace(/\r$/, "");
    if (!erased.has(id)) return;
    // Ids name the non-null rows in order, skipping the null row wherever it is.
    const row = line >= m.users.null_row ? line + 1 : line;
    out.fill(0, row * m.user_dim * 4, (row + 1) * m.user_dim * 4);
    lines[line] = `~erased-${row}`;
    blanked++;
  });
  return blanked === 0 ? null : { ids: lines.join("\n"), table: out, blanked };
}

const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Runs `fn` holding the version's revision lock: two erasures revising one version at once would
 * each write back a table blanked only of its own users, and the later would restore the other's
 * rows. The lock expires after `ttlMs`, so a crashed holder delays the next one, never blocks it.
 */
async function withVersionLock<T>(deps: RegistryDeps, version: string, fn: () => Promise<T>, ttlMs = 120_000): Promise<T> {
  const key = `${deps.redisPrefix}:models:revising:${version}`;
  const token = `${process.pid}-${Math.random()}`;
  while ((await deps.redis.set(key, token, "PX", ttlMs, "NX")) !== "OK") await new Promise((r) => setTimeout(r, 200));
  try {
    return await fn();
  } finally {
    await deps.redis.eval(UNLOCK, 1, key, token);
  }
}

/**
 * Blanks `userIds` in every published version that has them. Idempotent: a version whose table no
 * longer names any of them is left as it is. @returns how many versions were rewritten
 */
export async function eraseUsersFromRegistry(deps: RegistryDeps, userIds: readonly string[], actor: string): Promise<number> {
  const erased = new Set(userIds);
  const keys = registryObjectKeys(deps.objectPrefix);
  const text = async (version: string, path: string) => new TextDecoder().decode(await deps.blobs.get(keys.file(version, path)));
  let rewritten = 0;
  for (const { version } of await listPublished(deps.redis, deps.redisPrefix)) {
    // Only the manifest and the id list are read to decide; reviseVersion reads and verifies everything.
    const manifest = JSON.parse(await text(version, "manifest.json")) as Partial<UserTableManifest>;
    const tablePath = manifest.files?.user_table?.path;
    const idsPath = manifest.files?.user_ids?.path;
    if (!tablePath || !idsPath || !manifest.users || !manifest.user_dim) continue; // no user table (e.g. a decoder-only version)
    const ids = await text(version, idsPath);
    if (!ids.split("\n").some((l) => erased.has(l.replace(/\r$/, "")))) continue;
    const revised = await withVersionLock(deps, version, async () => {
      // Read again under the lock, verified: what is written back is the current table less the rows.
      const files = await readPublishedFiles(deps, version);
      const result = blankUsers(manifest as UserTableManifest, new TextDecoder().decode(files.get(idsPath)), files.get(tablePath)!, erased);
      if (!result) return false;
      const replace = new Map([
        [tablePath, result.table],
        [idsPath, new TextEncoder().encode(result.ids)],
      ]);
      await reviseVersion(deps, version, replace, { actor, reason: `user-data erasure: ${result.blanked} user row(s) blanked` });
      return true;
    });
    if (revised) rewritten++;
  }
  return rewritten;
}
