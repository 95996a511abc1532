/**
 * Loaded model versions, bounded: at most `max` stay loaded besides the pinned ones, the least recently used idle one
 * leaves first (its `release` frees the ONNX sessions). A version in use is never released under
 * its runs; while every loaded version is busy the cache may hold more than `max` until one is idle.
 * A released version is loaded again by its next use (its files stay on disk).
 */
export interface VersionCache<T> {
  /** Runs `fn` with `version` loaded (loading it first if needed; concurrent first uses share one load). */
  use<R>(version: string, fn: (loaded: T) => Promise<R>): Promise<R>;
  /** Versions loaded now, least recently used first. */
  loaded(): string[];
}

export function createVersionCache<T>(o: {
  max: number;
  load: (version: string) => Promise<T>;
  release?: (version: string, loaded: T) => Promise<void> | void;
  /** Versions that stay loaded whatever their age (the embedded ones loaded at start). */
  pinned?: ReadonlySet<string>;
}): VersionCache<T> {
  if (!(o.max >= 1)) throw new RangeError(`a version cache holds at least one version, got ${o.max}`);
  const entries = new Map<string, { value: Promise<T>; inflight: number }>();

  function evict(): void {
    let over = [...entries.keys()].filter((v) => !o.pinned?.has(v)).length - o.max;
    for (const [version, e] of entries) {
      if (over <= 0) break;
      if (e.inflight > 0 || o.pinned?.has(version)) continue;
      entries.delete(version);
      over--;
      void e.value.then((v) => o.release?.(version, v)).catch(() => undefined);
    }
  }

  return {
    async use(version, fn) {
      let e = entries.get(version);
      if (e)
        entries.delete(version); // re-inserted below as the most recently used
      else e = { value: o.load(version), inflight: 0 };
      entries.set(version, e);
      e.inflight++;
      try {
        const loaded = await e.value.catch((err: unknown) => {
          if (entries.get(version) === e) entries.delete(version); // a failed load is retried by the next use
          throw err;
        });
        return await fn(loaded);
      } finally {
        e.inflight--;
        evict();
      }
    },
    loaded: () => [...entries.keys()],
  };
}
