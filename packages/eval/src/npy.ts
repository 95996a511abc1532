/** A NumPy .npy array (version 1/2/3, little-endian float32 or uint8, C order). */
export interface NpyArray {
  shape: number[];
  data: Float32Array | Uint8Array;
}

/** Parses .npy bytes; refuses dtypes and orders it does not handle rather than misreading them. */
export function parseNpy(bytes: Uint8Array): NpyArray {
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== "NUMPY") throw new Error("not a .npy file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (fortran) throw new Error(".npy in Fortran order is not supported");
  const offset = start + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  if (descr === "|u1") return { shape, data: bytes.slice(offset, offset + count) };
  if (descr === "<f4") {
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = view.getFloat32(offset + i * 4, true);
    return { shape, data };
  }
  throw new Error(`.npy dtype ${descr} is not supported (float32 <f4 or uint8 |u1)`);
}

/** Serialises a float32 array as .npy (version 1.0, little-endian, C order). */
export function encodeNpy(shape: readonly number[], data: Float32Array): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`shape ${shape.join("×")} holds ${count} values, data has ${data.length}`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  // magic (6) + version (2) + length (2) + header + "\n" is padded to a multiple of 64
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const out = new Uint8Array(10 + header.length + 4 * count);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  const view = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < count; i++) view.setFloat32(4 * i, data[i]!, true);
  return out;
}
