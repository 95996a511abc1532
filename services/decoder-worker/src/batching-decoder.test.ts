// Micro-batching over the real latent decoder (the tiny fixture): jobs decoded together get the
// images they would get alone, so batching is invisible to clients.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { encodePng, imageAt, loadLatentDecoder } from "@rebeca/inference";
import { createBatchingDecoder } from "./batching-decoder.js";
import { encodeImages } from "./encoded-images.js";

const MANIFEST = fileURLToPath(new URL("../../../packages/inference/test-fixtures/latent-tiny/manifest.json", import.meta.url));

describe("batching decoder over the latent decoder", () => {
  it("three concurrent jobs share one decoder call and each gets its own images (within 1e-5 of decoding alone) and their PNGs", async () => {
    const { decoder } = await loadLatentDecoder(MANIFEST, { providers: ["cpu"], intraOpThreads: 1, interOpThreads: 1 }, { steps: 4 });
    const E = decoder.config.embeddingDim;
    let calls = 0;
    const counting = async (e: Float32Array, n: number, s?: readonly number[]) => (calls++, encodeImages(await decoder.decode(e, n, s)));
    const batching = createBatchingDecoder(counting, E, { maxBatch: 8, maxWaitMs: 50, concurrency: 1 });
    const jobs = [
      { tenant: "acme", count: 2, seeds: [1, 2] },
      { tenant: "zeta", count: 1, seeds: [3] },
      { tenant: "acme", count: 3, seeds: [4, 5, 6] },
    ].map((j, n) => ({ ...j, embeddings: Float32Array.from({ length: j.count * E }, (_, k) => Math.cos(0.3 * k + n)) }));
    const together = await Promise.all(jobs.map((j) => batching.decode(j)));
    expect(calls).toBe(1);
    for (const [n, j] of jobs.entries()) {
      const alone = await decoder.decode(j.embeddings, j.count, j.seeds);
      expect(together[n]!.count).toBe(j.count);
      expect(together[n]!.pixels.length).toBe(alone.pixels.length);
      let max = 0;
      for (let k = 0; k < alone.pixels.length; k++) max = Math.max(max, Math.abs(together[n]!.pixels[k]! - alone.pixels[k]!));
      expect(max).toBeLessThan(1e-5);
      // the PNGs split with the pixels: each is this job's own image, hashed
      expect(together[n]!.encoded.length).toBe(j.count);
      for (const [i, e] of together[n]!.encoded.entries()) {
        expect(Buffer.from(e.png).equals(Buffer.from(encodePng(imageAt(together[n]!, i))))).toBe(true);
        expect(e.sha256).toBe(createHash("sha256").update(e.png).digest("hex"));
      }
    }
  });
});
