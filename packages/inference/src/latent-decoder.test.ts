
describe('latent decoder without an image projection (Kandinsky style)', () => {
  it('feeds the embedding itself as the condition and the all-zero embedding as the negative', async () => {
    const conds: Float32Array[] = [];
    const latentSize = 2 * 2 * 2;
    const decoder = createLatentDiffusionDecoder(
      {
        unet: {
          async predictNoise(sample, _t, condition, rows) {
            conds.push(Float32Array.from(condition));
            expect(sample.length).toBe(rows * latentSize);
            return new Float32Array(sample.length).fill(0.1);
          },
        },
        vae: { decode: async (latents, rows) => new Float32Array(rows * 3).fill(0) },
      },
      {
        embeddingDim: 2, latent: { channels: 2, height: 2, width: 2 }, latentScale: 1, image: { channels: 3, height: 1, width: 1 },
        vaeRange: [-1, 1], alphasCumprod: Float64Array.from({ length: 10 }, (_, i) => 1 - 0.05 * (i + 1)), stepsOffset: 0,
        scheduler: 'ddim', steps: 2, guidance: 3, noiseStream: 5,
      },
    );
    const out = await decoder.decode(Float32Array.of(1, 2, 3, 4), 2, [1, 2]);
    expect(Array.from(out.pixels)).toEqual(Array(6).fill(0.5));
    expect(conds).toHaveLength(2);
    expect(Array.from(conds[0]!)).toEqual([1, 2, 3, 4, 0, 0, 0, 0]);
  });
});
