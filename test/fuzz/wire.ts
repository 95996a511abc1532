/**
 * A protobuf wire-format writer that lets a test write anything: wrong wire types, negative and
 * oversized varints, NaN floats, invalid UTF-8, lengths past the end. Generated encoders refuse
 * most of these, which is exactly what a fuzzer must be able to send.
 */

export type Bytes = Uint8Array;

export function concat(...parts: Bytes[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Unsigned LEB128 of the low 64 bits (negative numbers become their 10-byte two's complement). */
export function varint(value: number | bigint): Bytes {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

export const tag = (field: number, wireType: number): Bytes => varint((field << 3) | wireType);
const utf8 = (s: string | Bytes): Bytes => (typeof s === "string" ? new TextEncoder().encode(s) : s);

/** Length-delimited field (string, bytes, sub-message). */
export const len = (field: number, body: string | Bytes): Bytes => {
  const b = utf8(body);
  return concat(tag(field, 2), varint(b.length), b);
};
export const int = (field: number, value: number | bigint): Bytes => concat(tag(field, 0), varint(value));
export const f32 = (field: number, value: number): Bytes => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, value, true);
  return concat(tag(field, 5), b);
};
/** A map<string, string> entry. */
export const mapEntry = (field: number, key: string | Bytes, value: string | Bytes): Bytes => len(field, concat(len(1, key), len(2, value)));
