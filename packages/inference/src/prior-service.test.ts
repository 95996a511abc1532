import { describe, expect, it } from "vitest";
import { createUserTable, type PriorManifest } from "./manifest.js";
import { createPriorSampler } from "./prior-service.js";
import type { PriorInput, PriorModel } from "./sampler.js";
import { cosineAlphasCumprod } from "./schedule.js";

const U = 2;
const D = 3;
const manifest = {
  embedding_dim: D,
  user_dim: U,
  clip_x0: 6,
  like: 1,
  null_like: 2,
  schedule: { name: "squaredcos_cap_v2", timesteps: 100, alphas_cumprod: Array.from(cosineAlphasCumprod(100)) },
  users: { rows: 3, null_row: 2 },
  defaults: { guidance: 4, steps: 10, sampler: "ddim" },
} as unknown as PriorManifest;

const data = new Uint8Array(Float32Array.of(1, 1, 2, 2, 0, 0).buffer);
const userTable = createUserTable({ data, rows: 3, dim: U, nullRow: 2, ids: "u1\nu2\n" });

function recorder(): PriorModel & { calls: PriorInput[] } {
  const calls: PriorInput[] = [];
  return {
    calls,
    predictX0: async (input) => {
      calls.push({ ...input, user: input.user.slice(), like: input.like.slice() });
      return new Float32Array(input.rows * D).fill(0.25);
    },
  };
}

describe("createPriorSampler", () => {
  it("applies manifest defaults and resolves user rows, null meaning the population", async () => {
    const model = recorder();
    const s = createPriorSampler({ model, userTable, manifest });
    const out = await s.sample({ userRow: [1, null], seeds: [1, 2] });
    expect(out.length).toBe(2 * D);
    expect(model.calls.length).toBe(10);
    const c = model.calls[0]!;
    expect(Array.from(c.user)).toEqual([2, 2, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(c.like)).toEqual([1n, 1n, 2n, 2n]);
  });

  it("one user for all seeds; DDPM defaults to every timestep", async () => {
    const model = recorder();
    const s = createPriorSampler({ model, userTable, manifest });
    await s.sample({ userRow: 0, seeds: [1, 2, 3], sampler: "ddpm" });
    expect(model.calls.length).toBe(100);
    expect(Array.from(model.calls[0]!.user.subarray(0, 3 * U))).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it("rejects unknown rows and mismatched lengths", async () => {
    const s = createPriorSampler({ model: recorder(), userTable, manifest });
    expect(() => s.sample({ userRow: 7, seeds: [1] })).toThrow(RangeError);
    expect(() => s.sample({ userRow: [0], seeds: [1, 2] })).toThrow(/1 entries for 2 seeds/);
  });
});
