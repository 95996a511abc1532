/**
 * Seeded noise shared bit-for-bit with the Python trainer (docs/model-format.md, "Seeded noise").
 *
 * Counter-based on purpose: a value depends only on (seed, stream, index), so an item's noise never
 * depends on which other items share its batch or on how many values were drawn before it.
 */

const TWO_POW_32 = 4294967296;

/** MurmurHash3's 32-bit finalizer; input and output are uint32. */
export function fmix32(h: number): number {
  h = h >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Key of one (seed, stream) pair; `bits(i)` of that pair is `fmix32(key + imul(i, 0xC2B2AE35) + 0x27D4EB2F)`. */
export function streamKey(seed: number, stream: number): number {
  const k1 = fmix32((seed ^ 0x9e3779b9) >>> 0);
  return fmix32((k1 + Math.imul(stream, 0x85ebca6b)) >>> 0);
}

/** The i-th uint32 of the stream whose key is `key` (see {@link streamKey}). */
export function bitsAt(key: number, index: number): number {
  return fmix32((key + Math.imul(index, 0xc2b2ae35) + 0x27d4eb2f) >>> 0);
}

/** The i-th uint32 of (seed, stream). */
export function bits(seed: number, stream: number, index: number): number {
  return bitsAt(streamKey(seed, stream), index);
}

function assertUint32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${name} must be a uint32, got ${v}`);
  }
}

/**
 * Standard normal vector of length `dim` for (seed, stream), Box–Muller in float64 on pairs.
 * Writes into `out` at `offset` when given (so a sampler can fill a batch buffer without copies).
 */
export function normalVector(seed: number, stream: number, dim: number, out: Float64Array = new Float64Array(dim), offset = 0): Float64Array {
  assertUint32("seed", seed);
  assertUint32("stream", stream);
  const key = streamKey(seed, stream);
  for (let j = 0; j < dim; j += 2) {
    // +1 keeps u1 in (0, 1] so the log is finite.
    const u1 = (bitsAt(key, j) + 1) / TWO_POW_32;
    const u2 = bitsAt(key, j + 1) / TWO_POW_32;
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    out[offset + j] = r * Math.cos(theta);
    if (j + 1 < dim) out[offset + j + 1] = r * Math.sin(theta);
  }
  return out;
}
