/**
 * Regroups a stream of byte chunks into parts of exactly `partSize` bytes (the last one shorter),
 * as S3 multipart uploads need (every part but the last at least 5 MiB). Holds at most one part.
 */
export async function* regroup(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, partSize: number): AsyncGenerator<Uint8Array> {
  if (!Number.isInteger(partSize) || partSize < 1) throw new RangeError(`partSize must be a positive integer, got ${partSize}`);
  let part = new Uint8Array(partSize);
  let filled = 0;
  for await (const chunk of source) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(partSize - filled, chunk.byteLength - offset);
      part.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === partSize) {
        yield part;
        part = new Uint8Array(partSize);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield part.subarray(0, filled);
}
