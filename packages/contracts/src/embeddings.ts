/**
 * The embedding format shared by the prior stage (writer) and the decode stage (reader): float32,
 * little-endian, row after row (`count × dim` values), as an S3 object (`objectKeys.embeddings`,
 * `objectKeys.shardEmbeddings`) or inline in a decode task as base64.
 */

/** Whether this machine stores floats little-endian (the format's order): then encoding is one copy. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Float32Array([1]).buffer)[3] === 0x3f;

/** Floats as little-endian bytes (the embedding object format). */
export function encodeEmbeddings(values: Float32Array): Uint8Array {
  // One copy of the memory instead of a DataView write per float (the prior worker encodes every job's).
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

/**
 * Little-endian float32 bytes back to floats.
 * @throws Error when the byte length is not a whole number of floats.
 */
export function decodeEmbeddings(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error(`embeddings object has ${bytes.byteLength} bytes, not a whole number of float32 values`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Embedding bytes as they ride inline in a decode task (`DecodeTask.embeddings`): base64. */
export const toInlineEmbeddings = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

/** The bytes of inline embeddings (the decode stage stores them as they came, beside the images). */
export const fromInlineEmbeddings = (inline: string): Uint8Array => new Uint8Array(Buffer.from(inline, "base64"));
