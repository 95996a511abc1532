/**
 * Backpressure between stages: before sampling a shard, wait while the tenant's decode backlog is
 * past `limit`, so a fast prior stage cannot pile embeddings up in front of slower decoders.
 * `backlogOf` reads a tenant's unfinished decode jobs. The shards of a tenant that wait at once
 * (up to CONCURRENCY of them) share one read per `pollMs`, so waiting costs Redis the same however
 * many shards are in flight.
 */
export function createDecodeHoldBack(backlogOf: (tenant: string) => Promise<number>, limit: number, pollMs = 200, maxWaitMs = 60_000) {
  const reads = new Map<string, { at: number; total: Promise<number> }>();
  function backlog(tenant: string): Promise<number> {
    const last = reads.get(tenant);
    if (last && Date.now() - last.at < pollMs) return last.total;
    const read = { at: Date.now(), total: backlogOf(tenant) };
    reads.set(tenant, read);
    // A failed read fails the shards that shared it (they are retried), and is not reused.
    read.total.catch(() => reads.get(tenant) === read && reads.delete(tenant));
    return read.total;
  }
  return async (tenant: string) => {
    const deadline = Date.now() + maxWaitMs;
    // Bounded, so a stuck decode stage delays shards without holding their locks forever.
    while (Date.now() < deadline && (await backlog(tenant)) > limit) {
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };
}
