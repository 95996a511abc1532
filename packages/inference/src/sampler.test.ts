import { describe, expect, it, vi } from "vitest";
import { normalVector } from "./rng.js";
import { SAMPLER_NAMES, sampleEmbeddings, type PriorInput, type PriorModel, type SamplerConfig } from "./sampler.js";
import { cosineAlphasCumprod } from "./schedule.js";

const D = 6;
const U = 3;
const T = 1000;
const config: SamplerConfig = {
  alphasCumprod: cosineAlphasCumprod(T),
  embeddingDim: D,
  userDim: U,
  clipX0: 6,
};
const nullUser = Float32Array.of(0, 0, 0);

function usersFor(n: number): Float32Array {
  const u = new Float32Array(n * U);
  for (let i = 0; i < u.length; i++) u[i] = ((i * 37) % 11) / 11 - 0.4;
  return u;
}

/** A deterministic, row-wise nonlinear fake prior: each output row depends only on its input row. */
function rowwiseModel(): PriorModel & { calls: PriorInput[] } {
  const calls: PriorInput[] = [];
  return {
    calls,
    async predictX0(input) {
      calls.push({ ...input, xT: input.xT.slice(), t: input.t.slice(), user: input.user.slice(), like: input.like.slice() });
      const out = new Float32Array(input.rows * D);
      for (let r = 0; r < input.rows; r++) {
        const t = Number(input.t[r]) / T;
        const like = Number(input.like[r]);
        for (let d = 0; d < D; d++) {
          const u = input.user[r * U + (d % U)]!;
          out[r * D + d] = Math.tanh(input.xT[r * D + d]! * (1 - t)) + u * (like === 1 ? 2 : 0.5) + 0.1 * d;
        }
      }
      return out;
    },
  };
}

describe("sampleEmbeddings", () => {
  for (const sampler of SAMPLER_NAMES) {
    it(`${sampler}: a model predicting a constant x0 lands on it`, async () => {
      const target = Float32Array.of(0.5, -1.25, 2, 0, 3.5, -0.75);
      const model: PriorModel = {
        predictX0: async ({ rows }) => {
          const out = new Float32Array(rows * D);
          for (let r = 0; r < rows; r++) out.set(target, r * D);
          return out;
        },
      };
      const out = await sampleEmbeddings(model, config, {
        users: usersFor(2),
        nullUser,
        seeds: [1, 2],
        guidance: 3,
        sampler,
        steps: sampler === "ddim" ? 20 : T,
      });
      for (let b = 0; b < 2; b++) {
        for (let d = 0; d < D; d++) {
          if (sampler !== "ddpm") expect(out[b * D + d]).toBe(target[d]);
          // DDPM's last step is x_prev = mean with a_p = 1: exactly x0 up to float64 rounding.
          else expect(out[b * D + d]).toBeCloseTo(target[d]!, 12);
        }
      }
    });
  }

  it("calls the model exactly `steps` times with 2B rows: conditional rows first, then null user and like", async () => {
    const model = rowwiseModel();
    const users = usersFor(3);
    await sampleEmbeddings(model, config, { users, nullUser, seeds: [5, 6, 7], guidance: 2, sampler: "ddim", steps: 7 });
    expect(model.calls.length).toBe(7);
    const expectedT = [999, 832, 666, 499, 333, 166, 0];
    model.calls.forEach((c, i) => {
      expect(c.rows).toBe(6);
      expect(c.xT.length).toBe(6 * D);
      expect(Array.from(c.t)).toEqual(Array(6).fill(BigInt(expectedT[i]!)));
      expect(Array.from(c.like)).toEqual([1n, 1n, 1n, 2n, 2n, 2n]);
      expect(Array.from(c.user.subarray(0, 3 * U))).toEqual(Array.from(users));
      expect(Array.from(c.user.subarray(3 * U))).toEqual(Array(3 * U).fill(0));
      // Both halves see the same x_t.
      expect(Array.from(c.xT.subarray(0, 3 * D))).toEqual(Array.from(c.xT.subarray(3 * D)));
    });
    // x_T is stream 0 of each seed, cast to float32.
    const first = model.calls[0]!.xT;
    [5, 6, 7].forEach((s, b) => expect(Array.from(first.subarray(b * D, (b + 1) * D))).toEqual(Array.from(Float32Array.from(normalVector(s, 0, D)))));
  });

  it("DDPM defaults to S = T steps and uses ancestral noise from stream i + 1", async () => {
    const model = rowwiseModel();
    const spy = vi.fn();
    await sampleEmbeddings(
      model,
      { ...config, alphasCumprod: cosineAlphasCumprod(10) },
      {
        users: usersFor(1),
        nullUser,
        seeds: [11],
        guidance: 1,
        sampler: "ddpm",
        onStep: spy,
      },
    );
    expect(model.calls.length).toBe(10);
    expect(spy).toHaveBeenCalledTimes(10);
    expect(spy.mock.calls.map((c) => (c[0] as { t: number }).t)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it("combines guidance as x0_u + g·(x0_c − x0_u) and clips to ±clip_x0 (one DDIM step returns x0)", async () => {
    const cond = Float32Array.of(1, 2, -1, 0.5, 10, -10);
    const unc = Float32Array.of(0.5, 1, 1, 0.5, 0, 0);
    const model: PriorModel = {
      predictX0: async ({ rows }) => {
        const out = new Float32Array(rows * D);
        for (let r = 0; r < rows; r++) out.set(r < rows / 2 ? cond : unc, r * D);
        return out;
      },
    };
    for (const g of [0, 1, 3]) {
      const out = await sampleEmbeddings(model, config, {
        users: usersFor(1),
        nullUser,
        seeds: [1],
        guidance: g,
        sampler: "ddim",
        steps: 1,
      });
      const expected = Array.from(cond, (c, d) => Math.max(-6, Math.min(6, unc[d]! + g * (c - unc[d]!))));
      expect(Array.from(out)).toEqual(Array.from(Float32Array.from(expected)));
    }
  });

  for (const sampler of SAMPLER_NAMES) {
    it(`${sampler}: batch invariant — item 0 alone equals item 0 in a batch of 3, bit for bit`, async () => {
      const users = usersFor(3);
      const steps = sampler === "ddpm" ? 200 : 25;
      const cfg = sampler === "ddpm" ? { ...config, alphasCumprod: cosineAlphasCumprod(200) } : config;
      const alone = await sampleEmbeddings(rowwiseModel(), cfg, {
        users: users.subarray(0, U),
        nullUser,
        seeds: [42],
        guidance: 3,
        sampler,
        steps,
      });
      const batch = await sampleEmbeddings(rowwiseModel(), cfg, {
        users,
        nullUser,
        seeds: [42, 7, 99],
        guidance: 3,
        sampler,
        steps,
      });
      expect(Array.from(batch.subarray(0, D))).toEqual(Array.from(alone));
      expect(Array.from(batch.subarray(D, 2 * D))).not.toEqual(Array.from(alone));
      expect(alone.every(Number.isFinite)).toBe(true);
    });
  }

  it("DPM-Solver++(2M) with 2 steps is DDIM (first-order steps); with 4 it differs, and its SDE variant is seeded", async () => {
    const run = (sampler: (typeof SAMPLER_NAMES)[number], steps: number, seeds = [3, 4]) =>
      sampleEmbeddings(rowwiseModel(), config, { users: usersFor(2), nullUser, seeds, guidance: 2, sampler, steps, spacing: "trailing" });
    expect(Array.from(await run("dpmpp_2m", 2))).toEqual(Array.from(await run("ddim", 2)));
    const ddim4 = Array.from(await run("ddim", 4));
    const dpm4 = Array.from(await run("dpmpp_2m", 4));
    const sde4 = Array.from(await run("dpmpp_2m_sde", 4));
    expect(dpm4).not.toEqual(ddim4);
    expect(sde4).not.toEqual(dpm4);
    expect(Array.from(await run("dpmpp_2m_sde", 4))).toEqual(sde4);
    expect(Array.from(await run("dpmpp_2m_sde", 4, [5, 4]))).not.toEqual(sde4);
  });

  it("evaluates the model at the spacing's timesteps", async () => {
    for (const [spacing, ts] of [
      ["trailing", [999, 666, 333]],
      ["leading", [666, 333, 0]],
      ["linspace", [999, 499, 0]],
    ] as const) {
      const model = rowwiseModel();
      await sampleEmbeddings(model, config, { users: usersFor(1), nullUser, seeds: [1], guidance: 2, sampler: "dpmpp_2m", steps: 3, spacing });
      expect(model.calls.map((c) => Number(c.t[0]))).toEqual(ts);
    }
  });

  it("stops between steps when the signal aborts", async () => {
    const model = rowwiseModel();
    const ac = new AbortController();
    const reason = new Error("cancelled by client");
    const p = sampleEmbeddings(model, config, {
      users: usersFor(1),
      nullUser,
      seeds: [1],
      guidance: 3,
      sampler: "ddim",
      steps: 10,
      signal: ac.signal,
      onStep: ({ step }) => {
        if (step === 2) ac.abort(reason);
      },
    });
    await expect(p).rejects.toBe(reason);
    expect(model.calls.length).toBe(3);
  });

  it("rejects mismatched shapes", async () => {
    const model = rowwiseModel();
    await expect(sampleEmbeddings(model, config, { users: usersFor(2), nullUser, seeds: [1], guidance: 3, sampler: "ddim" })).rejects.toThrow(
      /users has 6 values/,
    );
    await expect(sampleEmbeddings(model, config, { users: usersFor(1), nullUser, seeds: [1], guidance: 3, sampler: "ddim", steps: 1001 })).rejects.toThrow(
      RangeError,
    );
    await expect(sampleEmbeddings(model, config, { users: usersFor(1), nullUser, seeds: [1], guidance: 3, sampler: "ddpm", steps: 50 })).rejects.toThrow(
      /visits all 1000 timesteps/,
    );
    await expect(sampleEmbeddings(model, config, { users: usersFor(1), nullUser, seeds: [1], guidance: 3, sampler: "euler" as never })).rejects.toThrow(
      /unknown sampler euler/,
    );
  });
});
