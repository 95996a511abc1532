/**
 * A canary batch splits each block of consecutive users into a stable and a candidate shard
 * (gateway batch-routing.ts); the result manifest still lists users in position order, so the two
 * shards' result lines (each already in position order) are merged back (pure).
 */
export function mergeByPosition(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (b.byteLength === 0) return a;
  if (a.byteLength === 0) return b;
  const lines = (bytes: Uint8Array) =>
    new TextDecoder()
      .decode(bytes)
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => ({ line: l, position: (JSON.parse(l) as { position: number }).position }));
  const merged = [...lines(a), ...lines(b)].sort((x, y) => x.position - y.position);
  return new TextEncoder().encode(merged.map((x) => x.line).join("\n") + "\n");
}
