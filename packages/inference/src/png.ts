/**
 * Minimal deterministic PNG encoder (8-bit grayscale or RGB, no interlace). Pure apart from
 * node:zlib; the same pixels always give the same bytes, so S3 keys and ETags are stable.
 */
import { deflateSync } from "node:zlib";

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as PNG chunks use). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One image in planar [C, H, W] float layout, as decoders output it. */
export interface PlanarImage {
  /** C·H·W values; any range, clamped to [0, 1] on encoding. */
  readonly pixels: Float32Array;
  /** 1 (grayscale) or 3 (RGB). */
  readonly channels: number;
  readonly height: number;
  readonly width: number;
}

/** Maps [0, 1] to 0..255 with clamping and round-half-up; NaN becomes 0. */
export function toByte(v: number): number {
  if (!(v > 0)) return 0;
  if (v >= 1) return 255;
  return Math.floor(v * 255 + 0.5);
}

export interface PngOptions {
  /** zlib level; fixed so output bytes do not depend on defaults. @default 9 */
  readonly level?: number;
}

/** Encodes planar float pixels in [0, 1] as a PNG. */
export function encodePng(image: PlanarImage, options: PngOptions = {}): Uint8Array {
  const { channels: C, height: H, width: W, pixels } = image;
  if (C !== 1 && C !== 3) throw new RangeError(`PNG encoder supports 1 or 3 channels, got ${C}`);
  if (!Number.isInteger(H) || !Number.isInteger(W) || H < 1 || W < 1) {
    throw new RangeError(`invalid image size ${W}×${H}`);
  }
  if (pixels.length !== C * H * W) {
    throw new RangeError(`pixels has ${pixels.length} values, expected ${C}×${H}×${W}`);
  }
  const stride = 1 + W * C;
  const raw = new Uint8Array(H * stride);
  const plane = H * W;
  for (let y = 0; y < H; y++) {
    const row = y * stride;
    raw[row] = 0; // filter type None: simple and deterministic
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < C; c++) {
        raw[row + 1 + x * C + c] = toByte(pixels[c * plane + y * W + x]!);
      }
    }
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, W);
  dv.setUint32(4, H);
  ihdr[8] = 8; // bit depth
  ihdr[9] = C === 1 ? 0 : 2; // colour type: grayscale or truecolour
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  const idat = deflateSync(raw, { level: options.level ?? 9 });
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Item `index` of a batch [N, C, H, W] as a {@link PlanarImage} (a view, no copy). */
export function imageAt(batch: { pixels: Float32Array; channels: number; height: number; width: number }, index: number): PlanarImage {
  const per = batch.channels * batch.height * batch.width;
  return {
    pixels: batch.pixels.subarray(index * per, (index + 1) * per),
    channels: batch.channels,
    height: batch.height,
    width: batch.width,
  };
}
