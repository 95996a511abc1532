/**
 * Where the model registry keeps things. Files live in object storage under
 * `<prefix>/models/<version>/…` beside `registry.json` (every file's path, size and sha256); Redis
 * holds the small pointer services watch (which versions exist), each tenant's traffic policy and
 * an audit stream of `model.*` events. Redis keys carry the queue prefix's hash tag, like every
 * other Rebeca key, so they live in one Redis Cluster slot.
 */

/** A version name: what a directory, an S3 path segment and a metric label can all carry. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Throws unless `version` is a usable version name (see {@link VERSION_PATTERN}). */
export function assertVersionName(version: string): void {
  if (!VERSION_PATTERN.test(version)) throw new RangeError(`model version ${JSON.stringify(version.slice(0, 80))} must match ${VERSION_PATTERN}`);
}

/** Object keys of the registry under `prefix` (e.g. `registry`; "" for the bucket root). */
export function registryObjectKeys(prefix: string) {
  const base = prefix ? `${prefix.replace(/\/+$/, "")}/models` : "models";
  return {
    /** The version's index: its files with sizes and sha256s. */
    index: (version: string) => `${base}/${version}/registry.json`,
    file: (version: string, path: string) => `${base}/${version}/${path}`,
  };
}

/** Redis keys of the registry under the queue prefix (e.g. `{rebeca}`). */
export function registryRedisKeys(prefix: string) {
  return {
    /** Hash: version → JSON {@link PublishedVersion}. The pointer services watch. */
    versions: () => `${prefix}:models:versions`,
    /** Pub/sub channel: a version was published or a policy changed (the payload says which). */
    changes: () => `${prefix}:models:changes`,
    /** Hash: tenant → JSON traffic policy. */
    policies: () => `${prefix}:models:policies`,
    /** Stream of `model.*` events (publish, refuse, canary, promote, rollback): the audit trail. */
    events: () => `${prefix}:models:events`,
    /** Hash: version → when a gateway last accepted work naming it (ms); cache pruning keeps these. */
    accepted: () => `${prefix}:models:accepted`,
  };
}

/** What the pointer says about one published version. */
export interface PublishedVersion {
  version: string;
  /** sha256 of its registry.json: the index a service must find before it trusts any file. */
  indexSha256: string;
  publishedAt: string;
  files: number;
  bytes: number;
}
