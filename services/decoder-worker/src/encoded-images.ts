/**
 * Decoded images as the decode stage serves them: PNG bytes and their sha256, made where the images
 * were decoded. On a decoder thread that takes PNG encoding and hashing off the worker's main
 * thread, whose turns belong to S3, Redis and BullMQ work (issue 14: the per-job path).
 */
import { createHash } from "node:crypto";
import { encodePng, imageAt, type DecodedImages } from "@rebeca/inference";

/** One image as uploaded: its PNG and that PNG's sha256 (hex). */
export interface EncodedImage {
  readonly png: Uint8Array;
  readonly sha256: string;
}

/** Decoded images with one EncodedImage per image, in order. */
export interface EncodedDecode extends DecodedImages {
  readonly encoded: readonly EncodedImage[];
}

/** Decodes `count` images from `embeddings` [count, D] and encodes them. */
export type EncodingDecode = (embeddings: Float32Array, count: number, seeds?: readonly number[]) => Promise<EncodedDecode>;

/** PNG + sha256 of every image of a decode. */
export function encodeImages(images: DecodedImages): EncodedDecode {
  const encoded: EncodedImage[] = [];
  for (let i = 0; i < images.count; i++) {
    const png = encodePng(imageAt(images, i));
    encoded.push({ png, sha256: createHash("sha256").update(png).digest("hex") });
  }
  return { ...images, encoded };
}

/** The decoder's encoding decode: its own (a decoder thread encodes there) or decode-then-encode here. */
export function encodingDecodeOf(loaded: {
  decoder: { decode(e: Float32Array, n: number, s?: readonly number[]): Promise<DecodedImages> };
  decodeEncoded?: EncodingDecode;
}): EncodingDecode {
  return loaded.decodeEncoded ?? (async (e, n, s) => encodeImages(await loaded.decoder.decode(e, n, s)));
}
