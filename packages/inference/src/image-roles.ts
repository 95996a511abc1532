/**
 * The image roles every decoder and encoder implements (the ONNX adapters in onnx.ts, the latent
 * decoder in latent-decoder.ts). Types only: no runtime is loaded.
 */

/** Images [count, channels, height, width], row-major, values in the decoder's range. */
export interface DecodedImages {
  readonly pixels: Float32Array;
  readonly count: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
}

/** Turns prior embeddings into images. */
export interface ImageDecoder {
  /**
   * `embeddings` is [count, D]; `seeds` (one uint32 per image) drive the decoder's own noise. The
   * single-shot decoder is deterministic and ignores them; a latent-diffusion decoder requires them.
   * `signal` stops a decode between model runs (it rejects with the signal's reason): a thread
   * must not be terminated inside an ONNX run.
   */
  decode(embeddings: Float32Array, count: number, seeds?: readonly number[], signal?: AbortSignal): Promise<DecodedImages>;
}

/** Turns images back into embeddings (evaluation: the verifier compares these). */
export interface ImageEncoder {
  /** `pixels` is [count, C, H, W]; returns [count, D]. */
  encode(pixels: Float32Array, count: number): Promise<Float32Array>;
}
