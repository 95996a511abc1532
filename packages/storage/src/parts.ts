/**
 * Regroups a stream of byte chunks into parts of exactly `partSize` bytes (the last one shorter),
 * as S3 multipart uploads need (every part but the last at least 5 MiB). Holds at most one part,
 * and only as many bytes as have arrived: most manifests are a few KB, and a part buffer of the
 * full 8 MiB for each of them made the writer's RSS jump by 8 MiB with every batch.
 */
export async function* regroup(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, partSize: number): AsyncGenerator<Uint8Array> {
  if (!Number.isInteger(partSize) || partSize < 1) throw new RangeError(`partSize must be a positive integer, got ${partSize}`);
  let pieces: Uint8Array[] = [];
  let filled = 0;
  for await (const chunk of source) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(partSize - filled, chunk.byteLength - offset);
      // A copy: the source may reuse its chunk's memory once it has been read.
      pieces.push(chunk.slice(offset, offset + n));
      filled += n;
      offset += n;
      if (filled === partSize) {
        yield join(pieces, filled);
        pieces = [];
        filled = 0;
      }
    }
  }
  if (filled > 0) yield join(pieces, filled);
}

function join(pieces: Uint8Array[], total: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
