// Integration test on the committed demo decoder (models/demo-v1/decoder). Never skips: a missing
// artifact fails with a message saying what to produce.
import { describe, expect, it } from "vitest";
import { demoFile, readNpyF32 } from "../test-support/demo-model.js";
import { loadDecoderModelFiles } from "./manifest.js";
import { createImageEncoder, createOnnxSession, createSingleShotDecoder } from "./onnx.js";
import { encodePng } from "./png.js";

async function openDecoder() {
  const files = await loadDecoderModelFiles(demoFile("decoder/manifest.json"));
  const m = files.manifest;
  const shape = { embeddingDim: m.embedding_dim, channels: m.channels, height: m.height, width: m.width };
  const dec = await createOnnxSession(files.files["decoder"]!.bytes, { providers: ["cpu"], intraOpThreads: 1 });
  const decoder = createSingleShotDecoder(dec.session, { ...shape, io: m.io.decoder });
  const encoder =
    m.io.encoder && files.files["encoder"]
      ? createImageEncoder((await createOnnxSession(files.files["encoder"].bytes, { intraOpThreads: 1 })).session, {
          ...shape,
          io: m.io.encoder,
        })
      : undefined;
  return { manifest: m, decoder, encoder };
}

describe("single-shot demo decoder", () => {
  it("decodes catalogue embeddings to [1, 28, 28] in [0, 1], batch invariant, and encodes back", async () => {
    const { manifest, decoder, encoder } = await openDecoder();
    const items = readNpyF32(demoFile("world/items.npy"));
    const D = manifest.embedding_dim;
    expect(items.shape[1]).toBe(D);
    const three = items.data.slice(0, 3 * D);

    const single = await decoder.decode(three.slice(0, D), 1);
    expect([single.count, single.channels, single.height, single.width]).toEqual([1, 1, 28, 28]);
    expect(single.pixels.length).toBe(28 * 28);
    for (const v of single.pixels) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    const batch = await decoder.decode(three, 3);
    let maxDiff = 0;
    for (let i = 0; i < 28 * 28; i++) maxDiff = Math.max(maxDiff, Math.abs(batch.pixels[i]! - single.pixels[i]!));
    expect(maxDiff).toBeLessThanOrEqual(1e-5);

    expect(encodePng({ pixels: single.pixels, channels: 1, height: 28, width: 28 }).length).toBeGreaterThan(50);

    if (encoder) {
      const e = await encoder.encode(batch.pixels, 3);
      expect(e.length).toBe(3 * D);
      expect(e.every(Number.isFinite)).toBe(true);
    }
  });
});
