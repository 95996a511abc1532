import { readdir, readFile, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import type { Redis } from "ioredis";
import type { BlobStore } from "@rebeca/storage";
import { MODEL_EVENTS, writeWithModelEvent } from "./events.js";
import { parseRegistryIndex, RegistryIntegrityError, sha256Hex, type RegistryIndex } from "./index-file.js";
import { assertVersionName, registryObjectKeys, registryRedisKeys, type PublishedVersion } from "./layout.js";

/** What publishing needs: the object store and Redis, and the prefixes both use. */
export interface RegistryDeps {
  blobs: BlobStore;
  redis: Redis;
  /** Object-key prefix of the registry (`REGISTRY_PREFIX`). */
  objectPrefix: string;
  /** Redis key prefix (the queue prefix, with its hash tag). */
  redisPrefix: string;
}

/** Directories of a model directory that are not part of the served model (the demo world is training and evaluation data). */
const NOT_PUBLISHED = new Set(["world"]);

/** Every regular file under `dir` (following links), as relative POSIX paths, skipping {@link NOT_PUBLISHED} at the top. */
async function listFiles(dir: string, sub = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, sub))).sort()) {
    const rel = sub ? posix.join(sub, name) : name;
    if (!sub && NOT_PUBLISHED.has(name)) continue;
    const s = await stat(join(dir, rel));
    if (s.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (s.isFile()) out.push(rel);
  }
  return out;
}

/**
 * Checks what the model's own manifests promise: every `manifest.json` in the set whose `files`
 * entries carry `path` and `sha256` must find those files, with those hashes, beside it. A broken
 * directory is refused before anything is uploaded.
 */
export function checkManifests(version: string, files: ReadonlyMap<string, Uint8Array>): void {
  const top = files.get("manifest.json");
  if (!top) throw new RegistryIntegrityError(version, "no manifest.json");
  const named = (JSON.parse(new TextDecoder().decode(top)) as { version?: unknown }).version;
  if (named !== version) throw new RegistryIntegrityError(version, `manifest.json names version ${JSON.stringify(named)}`);
  for (const [path, bytes] of files) {
    if (posix.basename(path) !== "manifest.json") continue;
    const manifest = JSON.parse(new TextDecoder().decode(bytes)) as { files?: Record<string, { path?: string; sha256?: string }> };
    for (const [key, f] of Object.entries(manifest.files ?? {})) {
      if (typeof f?.path !== "string" || typeof f.sha256 !== "string") continue;
      const target = posix.join(posix.dirname(path), f.path);
      const got = files.get(target);
      if (!got) throw new RegistryIntegrityError(version, `${path} names ${key} file ${target}, which is missing`);
      if (sha256Hex(got) !== f.sha256) throw new RegistryIntegrityError(version, `${target} does not match the sha256 ${path} gives it`);
    }
  }
}

/**
 * Publishes a version from its files (path → bytes): checks the manifests, uploads every file,
 * then `registry.json` (so a reader that finds the index finds every file), then sets the Redis
 * pointer, announces it on the change channel and records `model.published`. Versions are
 * immutable: publishing the same files again is a no-op, different files under a published name
 * are refused.
 * @returns the pointer entry, and whether this call published it.
 */
export async function publishFiles(
  deps: RegistryDeps,
  version: string,
  files: ReadonlyMap<string, Uint8Array>,
  opts: { source: string; actor: string },
): Promise<{ published: PublishedVersion; created: boolean }> {
  assertVersionName(version);
  checkManifests(version, files);
  const keys = registryObjectKeys(deps.objectPrefix);
  const rkeys = registryRedisKeys(deps.redisPrefix);
  const entries = [...files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([path, bytes]) => ({ path, bytes: bytes.byteLength, sha256: sha256Hex(bytes) }));
  const existing = await deps.redis.hget(rkeys.versions(), version);
  if (existing) {
    const prior = parseRegistryIndex(version, await deps.blobs.get(keys.index(version)));
    const same = JSON.stringify(prior.files) === JSON.stringify(entries);
    if (!same) throw new Error(`model version ${version} is already published with other files; publish under a new version name`);
    return { published: JSON.parse(existing) as PublishedVersion, created: false };
  }
  for (const [path, bytes] of files) await deps.blobs.put(keys.file(version, path), bytes, "application/octet-stream");
  const index: RegistryIndex = { format: "rebeca.registry/v1", version, publishedAt: new Date().toISOString(), source: opts.source, files: entries };
  const indexBytes = new TextEncoder().encode(JSON.stringify(index, null, 1));
  await deps.blobs.put(keys.index(version), indexBytes, "application/json");
  const published: PublishedVersion = {
    version,
    indexSha256: sha256Hex(indexBytes),
    publishedAt: index.publishedAt,
    files: entries.length,
    bytes: entries.reduce((s, e) => s + e.bytes, 0),
  };
  await writeWithModelEvent(
    deps.redis,
    deps.redisPrefix,
    { hash: rkeys.versions(), field: version, value: JSON.stringify(published) },
    { kind: "version", version },
    { type: MODEL_EVENTS.published, version, tenant: "", actor: opts.actor, reason: `published from ${opts.source}`, detail: JSON.stringify(published) },
  );
  return { published, created: true };
}

/**
 * Publishes a model directory (`models/<version>/` as training writes it, without `world/`) as
 * `version` (default: the name its manifest.json gives). The directory's manifests must hold: a
 * file that does not match its manifest's sha256 is refused before anything is uploaded.
 */
export async function publishVersionDir(deps: RegistryDeps, dir: string, opts: { version?: string; actor: string }) {
  const files = new Map<string, Uint8Array>();
  for (const path of await listFiles(dir)) files.set(path, new Uint8Array(await readFile(join(dir, path))));
  const manifest = files.get("manifest.json");
  const version = opts.version ?? (manifest ? String((JSON.parse(new TextDecoder().decode(manifest)) as { version?: unknown }).version) : "");
  return publishFiles(deps, version, files, { source: dir, actor: opts.actor });
}

/** Reads every file of a published version from the registry, verified against its index. */
export async function readPublishedFiles(deps: Pick<RegistryDeps, "blobs" | "objectPrefix">, version: string): Promise<Map<string, Uint8Array>> {
  const keys = registryObjectKeys(deps.objectPrefix);
  const index = parseRegistryIndex(version, await deps.blobs.get(keys.index(version)));
  const files = new Map<string, Uint8Array>();
  for (const entry of index.files) {
    const bytes = await deps.blobs.get(keys.file(version, entry.path));
    if (sha256Hex(bytes) !== entry.sha256) throw new RegistryIntegrityError(version, `${entry.path} does not match registry.json`);
    files.set(entry.path, bytes);
  }
  return files;
}

/**
 * Publishes `to`, a version derived from the published `from` with some files replaced (e.g. a
 * user table with a user's row blanked for erasure). The top manifest's `version` becomes `to`, and
 * every manifest entry that names a replaced file gets that file's new sha256; everything else is
 * copied as it is.
 * @param replace path (relative to the version) → new bytes; each path must exist in `from`.
 */
export async function publishDerivedVersion(
  deps: RegistryDeps,
  from: string,
  to: string,
  replace: ReadonlyMap<string, Uint8Array>,
  opts: { actor: string; reason: string },
) {
  const files = withReplaced(await readPublishedFiles(deps, from), from, to, replace);
  return publishFiles(deps, to, files, { source: `derived from ${from}: ${opts.reason}`, actor: opts.actor });
}

/**
 * `files` with some replaced, and every manifest rewritten to match: the top manifest names
 * `version`, each entry that names a replaced file gets its new sha256.
 */
function withReplaced(files: Map<string, Uint8Array>, from: string, version: string, replace: ReadonlyMap<string, Uint8Array>): Map<string, Uint8Array> {
  for (const [path, bytes] of replace) {
    if (!files.has(path)) throw new Error(`${from} has no file ${path} to replace`);
    files.set(path, bytes);
  }
  const manifests = [...files.keys()].filter((p) => posix.basename(p) === "manifest.json").sort((a, b) => b.split("/").length - a.split("/").length);
  // Deepest first: a rewritten decoder manifest changes the hash the top manifest gives it.
  for (const path of manifests) {
    const m = JSON.parse(new TextDecoder().decode(files.get(path)!)) as { version?: string; files?: Record<string, { path?: string; sha256?: string }> };
    if (path === "manifest.json") m.version = version;
    for (const f of Object.values(m.files ?? {})) {
      if (typeof f?.path !== "string" || typeof f.sha256 !== "string") continue;
      const target = files.get(posix.join(posix.dirname(path), f.path));
      if (target) f.sha256 = sha256Hex(target);
    }
    files.set(path, new TextEncoder().encode(JSON.stringify(m, null, 1)));
  }
  return files;
}

/**
 * Rewrites a published version in place (a new revision under the same name), for what must not
 * stay in any stored file (user-data erasure): the replaced files and every manifest are
 * overwritten, then `registry.json`, then the pointer (its new index sha256) is set, announced on
 * the change channel and recorded as `model.revised`. Jobs that name the version keep working; a
 * loader that fetches it from now on gets, and verifies, the new revision. The only exception to
 * versions being immutable.
 */
export async function reviseVersion(deps: RegistryDeps, version: string, replace: ReadonlyMap<string, Uint8Array>, opts: { actor: string; reason: string }) {
  const keys = registryObjectKeys(deps.objectPrefix);
  const rkeys = registryRedisKeys(deps.redisPrefix);
  const before = await readPublishedFiles(deps, version);
  const old = new Map(before);
  const files = withReplaced(before, version, version, replace);
  for (const [path, bytes] of files)
    if (sha256Hex(bytes) !== sha256Hex(old.get(path)!)) await deps.blobs.put(keys.file(version, path), bytes, "application/octet-stream");
  const prior = parseRegistryIndex(version, await deps.blobs.get(keys.index(version)));
  const entries = [...files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([path, bytes]) => ({ path, bytes: bytes.byteLength, sha256: sha256Hex(bytes) }));
  const index: RegistryIndex = { ...prior, files: entries };
  const indexBytes = new TextEncoder().encode(JSON.stringify(index, null, 1));
  await deps.blobs.put(keys.index(version), indexBytes, "application/json");
  const published = JSON.parse((await deps.redis.hget(rkeys.versions(), version)) ?? "{}") as PublishedVersion;
  const revised: PublishedVersion = { ...published, indexSha256: sha256Hex(indexBytes), bytes: entries.reduce((s, e) => s + e.bytes, 0) };
  await writeWithModelEvent(
    deps.redis,
    deps.redisPrefix,
    { hash: rkeys.versions(), field: version, value: JSON.stringify(revised) },
    { kind: "version", version },
    { type: MODEL_EVENTS.revised, version, tenant: "", actor: opts.actor, reason: opts.reason, detail: JSON.stringify(revised) },
  );
  return revised;
}

/** Every published version, oldest first. */
export async function listPublished(redis: Redis, redisPrefix: string): Promise<PublishedVersion[]> {
  const all = Object.values(await redis.hgetall(registryRedisKeys(redisPrefix).versions())).map((s) => JSON.parse(s) as PublishedVersion);
  return all.sort((a, b) => (a.publishedAt < b.publishedAt ? -1 : a.publishedAt > b.publishedAt ? 1 : 0));
}
